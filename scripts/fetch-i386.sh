#!/usr/bin/env bash
# Fetch the Debian i386 packages the 32-bit Java runtime is assembled from, with `apt-get download`
# into a cache directory. Nothing is installed on the host: the .debs are only downloaded and later
# unpacked with `dpkg-deb -x` by `gridforge release java32`.
#
# usage: bash scripts/fetch-i386.sh [cache-dir]      (default /var/cache/gridforge/i386)
# prints the cache directory on stdout; reruns with a complete cache are instant and offline.
set -euo pipefail

CACHE="${1:-${GRIDFORGE_I386_CACHE:-/var/cache/gridforge/i386}}"
# The JDK and the libraries its ELF NEEDED closure reaches, plus glibc (libc6 ships ld-linux,
# libnss_*, libresolv). openjdk-17-jre-headless is the JDK; the others are what its native
# libraries link against.
PACKAGES=(
  openjdk-17-jre-headless:i386
  libc6:i386 zlib1g:i386 libgcc-s1:i386 libstdc++6:i386
)

mkdir -p "$CACHE"
complete=1
for p in "${PACKAGES[@]}"; do
  name="${p%%:*}"
  ls "$CACHE/${name}_"*_i386.deb >/dev/null 2>&1 || ls "$CACHE/${name}_"*_all.deb >/dev/null 2>&1 || { complete=0; break; }
done
if [ $complete = 1 ]; then echo "$CACHE"; exit 0; fi

APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  echo "fetch-i386: adding the i386 architecture (for downloads only)" >&2
  dpkg --add-architecture i386
fi
if ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q 'binary-i386_Packages'; then
  echo "fetch-i386: apt-get update" >&2
  apt-get "${APT_OPTS[@]}" update -qq >&2 || true
fi

tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-i386: downloading ${PACKAGES[*]}" >&2
# apt-get download writes into the current directory; chmod so the _apt sandbox user can write there.
chmod 0777 "$tmp"
( cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq "${PACKAGES[@]}" >&2 )
mv -f "$tmp"/*.deb "$CACHE"/
echo "$CACHE"
