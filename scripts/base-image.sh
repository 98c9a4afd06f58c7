#!/usr/bin/env bash
# Make the offline Debian base image used by tests, the demo and CI:
#   debootstrap --variant=minbase bookworm  ->  docker import  ->  gridforge/base:debian-bookworm
# No container registry is reachable on CI machines; production configs name registry images.
# Usage: scripts/base-image.sh [image-ref]   (idempotent: does nothing when the image exists)
set -euo pipefail
REF="${1:-gridforge/base:debian-bookworm}"
MIRROR="${GRIDFORGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$REF" >/dev/null 2>&1; then
  echo "base image $REF already present" >&2; exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
work=$(mktemp -d /var/tmp/gridforge-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "debootstrap --variant=minbase bookworm ($MIRROR) ..." >&2
debootstrap --variant=minbase bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }
# apt inside the image uses the same mirror; keep the image small.
echo "deb $MIRROR bookworm main" >"$work/root/etc/apt/sources.list"
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* || true
tar -C "$work/root" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$REF" >/dev/null
echo "$REF"
