#!/usr/bin/env bash
# The main job end to end on this machine (the README's first command):
#   1. build the VO-box (Debian, Slurm) and job images from templates, flattened to one layer;
#   2. create a local CernVM-FS repository and publish into it: the job sandbox (streamed straight
#      from the image), the `default` symlink to it, and the 32-bit Java runtime with its patched glibc;
#   3. verify the repository (signatures, object hashes, catalogs);
#   4. start a local test host (own network + mount namespace, sshd, dockerd) on a test LAN,
#      check the repository out as the host's /cvmfs/alice.cern.ch;
#   5. deploy the VO-box to it over SSH (MACVLAN address, fd limits, live-restore, CVMFS bind mount)
#      and wait until its services are RUNNING; reach it on its MACVLAN address from a LAN client.
#
# usage: bash scripts/demo.sh            run it (leaves the test host running; prints how to remove it)
#        bash scripts/demo.sh --down     remove the test host, LAN and demo repository
set -euo pipefail
cd "$(dirname "$0")/.."
W="${GRIDFORGE_DEMO_DIR:-/var/tmp/gridforge-demo}"
PREFIX=gfdemo
G=(node scripts/bin/gridforge.mjs)
HOST=(node --import tsx test/support/testhost/local-site.ts)

if [ "${1:-}" = "--down" ]; then
  "${HOST[@]}" down --prefix "$PREFIX"
  rm -rf "$W"
  echo "demo removed"
  exit 0
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "0/6 setup (installs what is missing)"
bash scripts/setup.sh

step "1/6 build the VO-box image (flattened)"
VOBOX=$("${G[@]}" image build vobox-slurm | tail -n 1)
echo "VO-box image: $VOBOX" >&2

step "2/6 build the job image (flattened)"
JOB=$("${G[@]}" image build job | tail -n 1)
echo "job image: $JOB" >&2

step "3/6 publish into a local CernVM-FS repository ($W/repo)"
rm -rf "$W/repo" "$W/repo.keys"
mkdir -p "$W"
"${G[@]}" repo init "$W/repo" --name alice.cern.ch
SANDBOX="debian12-$(date +%Y.%m)"
"${G[@]}" image sandbox "$JOB" --repo "$W/repo" --path "containers/fs/singularity/$SANDBOX"
"${G[@]}" repo link "$W/repo" containers/fs/singularity/default "$SANDBOX" --tag "demo-$SANDBOX"
I386=$(bash scripts/fetch-i386.sh)
"${G[@]}" release java32 --repo "$W/repo" --jdk "$I386"/openjdk-17-jre-headless_*_i386.deb \
  --libs "$I386"/libc6_*_i386.deb "$I386"/zlib1g_*_i386.deb "$I386"/libgcc-s1_*_i386.deb "$I386"/libstdc++6_*_i386.deb
"${G[@]}" repo verify "$W/repo"
"${G[@]}" repo tags "$W/repo"

step "4/6 local test host (sshd + dockerd in their own namespaces) on a test LAN"
SITE=$("${HOST[@]}" up --prefix "$PREFIX" --image "$VOBOX" --out "$W/site.yaml" | tail -n 1)
CVMFS_DIR=$(node -e "const y=require('js-yaml');console.log(y.load(require('fs').readFileSync(process.argv[1],'utf8')).vobox.cvmfs.mount)" "$SITE")
rm -rf "$CVMFS_DIR/alice.cern.ch"
"${G[@]}" repo checkout "$W/repo" "$CVMFS_DIR/alice.cern.ch"
echo "site file: $SITE" >&2

step "5/6 deploy the VO-box over SSH"
"${G[@]}" site check "$SITE" || true
"${G[@]}" site plan "$SITE"
"${G[@]}" site deploy "$SITE" --yes
"${G[@]}" site status "$SITE"

step "6/6 reach the VO-box on its MACVLAN address from a LAN client"
IP=$(node -e "const y=require('js-yaml');console.log(y.load(require('fs').readFileSync(process.argv[1],'utf8')).vobox.network.ip)" "$SITE")
"${HOST[@]}" ping --prefix "$PREFIX" "$IP"

cat >&2 <<MSG

The VO-box runs on the test host; its site file is $SITE.
Try: ${G[*]} site status $SITE | ${G[*]} site logs $SITE cron | ${G[*]} repo ls $W/repo containers/fs/singularity
Remove everything with: bash scripts/demo.sh --down
MSG
