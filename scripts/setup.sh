#!/usr/bin/env bash
# Install what gridforge's demo and test suite need on a fresh Debian machine (as root), idempotently:
# Debian packages, i386 architecture for `apt-get download` of the 32-bit runtime, npm dependencies,
# a running Docker engine, and the offline base image.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  docker.io            # Docker engine (dockerd + containerd); the client may be newer, that is fine
  debootstrap          # offline base image
  openssh-server openssh-client   # sshd in test hosts, ssh-keygen
  supervisor           # supervisord for VO-box config checks outside containers
  patchelf binutils file   # ELF patching and readelf for the 32-bit runtime
  umoci                # baseline in the flatten benchmark
  bubblewrap           # runs sandboxes unprivileged in tests; the testbed's job container runtime
  slurmctld slurmd slurm-client munge   # the testbed's real Slurm (gridforge testbed up)
  pigz zstd            # baselines / zstd layers
  isal                 # igzip: gzip layers inflated ~2.5x faster than pigz (images/archive/compression.ts)
  environment-modules tcl   # modulefile tests
  iproute2 iptables iputils-ping arping   # test hosts: netns, veth, bridge, macvlan; LAN client probes
  sqlite3 openssl      # independent readback of the repository
  fuse3                # FUSE 3 runtime of a stock cvmfs2 (test/support/stock-cvmfs.ts, GRIDFORGE_CVMFS_BIN)
  attr libcap2-bin     # setfattr writes sandbox xattrs as root; getfattr/getcap read them back in tests
  docker-registry skopeo apache2-utils   # registry tests: a local registry, an independent client, htpasswd
  procps psmisc util-linux curl ca-certificates git
  chromium             # renders the rollout HTML report in tests
)
JAVA_PACKAGE=openjdk-17-jdk-headless
# Test hooks (test/scripts/setup-mirror.test.ts): more packages to require (space-separated), forcing
# `apt-get update`, and the base delay in seconds between install retries.
read -r -a EXTRA_PACKAGES <<<"${GRIDFORGE_SETUP_EXTRA_PACKAGES:-}"
PACKAGES+=("${EXTRA_PACKAGES[@]}")
RETRY_DELAY=${GRIDFORGE_SETUP_RETRY_DELAY:-5}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v javac >/dev/null 2>&1 || missing+=("$JAVA_PACKAGE")

need_update=0
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  echo "setup: adding the i386 architecture (downloads only; nothing i386 is installed)" >&2
  dpkg --add-architecture i386
  need_update=1
fi
if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -m1 i386)" ]; then need_update=1; fi
[ "${GRIDFORGE_SETUP_FORCE_UPDATE:-0}" = 1 ] && need_update=1
# A failed `apt-get update` is only a warning: one index mid-sync on a mirror ("File has unexpected
# size ... Mirror sync in progress?") or one unreachable source must not stop setup while the packages
# it needs are still installable from the other indexes. Setup stops only when a package it needs
# cannot be installed, naming the package and apt's own message.
apt_update() {
  local log; log=$(mktemp)
  # apt exits 0 when a source is unreachable (only `W: Failed to fetch`): say so too.
  if ! apt-get update -qq >"$log" 2>&1 || grep -qE '^(E|W):' "$log"; then
    echo "setup: warning: apt-get update reported errors; going on with the package lists it could read:" >&2
    grep -E '^(E|W):' "$log" | head -5 | sed 's/^/setup:   /' >&2
  fi
  rm -f "$log"
}
# Install with retries: transient download errors (a mirror mid-sync, a dropped connection) pass.
apt_install() {
  local log; log=$(mktemp); local try
  for try in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         -o Acquire::Retries=3 "$@" >"$log" 2>&1; then rm -f "$log"; return 0; fi
    [ $try -lt 3 ] && { echo "setup: apt-get install failed (try $try of 3); retrying" >&2; sleep $((try * RETRY_DELAY)); apt_update; }
  done
  # Name the package(s) at fault: install them one by one and report each that fails.
  local p bad=()
  for p in "$@"; do
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Acquire::Retries=3 "$p" >"$log.$p" 2>&1 \
      || { bad+=("$p"); echo "setup: cannot install Debian package '$p':" >&2; grep -E '^(E|W):' "$log.$p" | head -5 | sed 's/^/setup:   /' >&2; }
    rm -f "$log.$p"
  done
  rm -f "$log"
  if [ ${#bad[@]} -gt 0 ]; then
    echo "setup: failed: ${bad[*]} could not be installed (apt's messages above). Fix the package sources in /etc/apt/ or try again when the mirror has finished syncing." >&2
    exit 1
  fi
}
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  echo "setup: apt-get update" >&2
  apt_update
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

# npm dependencies (better-sqlite3 builds from source when no prebuilt binary can be fetched).
# `npm install`, not `npm ci`: the lock file holds only this platform's optional packages (rollup's
# per-platform binaries), which `npm ci` refuses as out of sync; `npm install` keeps the locked versions.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || ! node -e "require('better-sqlite3')" >/dev/null 2>&1; then
  echo "setup: npm install (locked versions)" >&2
  npm install --no-audit --no-fund >/tmp/gridforge-npm-install.log 2>&1 || {
    tail -30 /tmp/gridforge-npm-install.log >&2; echo "setup: npm install failed (log above)" >&2; exit 1; }
fi

# Compile the TypeScript sources once (scripts/build.mjs) so `gridforge` starts without tsx; the
# executable falls back to the sources whenever they differ from this build, so a failure only slows it.
node scripts/build.mjs || echo "setup: warning: could not compile the sources into .build/ (above); gridforge runs them through tsx (slower start)" >&2

bash scripts/lib/ensure-docker.sh
bash scripts/base-image.sh >/dev/null
echo "setup: ready" >&2
