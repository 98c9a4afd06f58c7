#!/usr/bin/env bash
# The main job end to end on this machine (the README's first command):
#   1. build the VO-box (Debian, Slurm) and job images from templates, flattened to one layer;
#   2. create a local CernVM-FS repository and publish into it: the job sandbox (streamed straight
#      from the image), the `default` symlink to it, and the 32-bit Java runtime with its patched glibc;
#   3. verify the repository (signatures, object hashes, catalogs);
#   4. release JAliEn into it (the contract JobAgent/JobWrapper of testbed/agent/, as the module default);
#   5. bring up the local site (`gridforge testbed up`): a Slurm controller and 2 worker nodes in their own
#      namespaces, the repository served and mounted at /cvmfs/alice.cern.ch on each, and the VO-box
#      deployed over SSH (MACVLAN address, its Slurm client from the site file) with `site deploy`'s engine;
#   6. smoke jobs through it: the CE submitter in the VO-box sbatches the JobAgent startup script, the
#      JobAgent runs on the 32-bit JVM from /cvmfs and starts the JobWrapper in the job container.
#
# usage: bash scripts/demo.sh            run it (leaves the testbed running; prints how to remove it)
#        bash scripts/demo.sh --down     remove the testbed and the demo repository
set -euo pipefail
cd "$(dirname "$0")/.."
W="${GRIDFORGE_DEMO_DIR:-/var/tmp/gridforge-demo}"
G=(node scripts/bin/gridforge.mjs)

if [ "${1:-}" = "--down" ]; then
  "${G[@]}" testbed down
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

step "4/6 release JAliEn (the contract JobAgent/JobWrapper) as the module default"
"${G[@]}" testbed agent-jar -o "$W/alien-users.jar"
"${G[@]}" release jalien 2.1.0-1 --jar "$W/alien-users.jar" --repo "$W/repo" --tag demo-jalien-2.1.0-1

step "5/6 the local site: Slurm controller + 2 worker nodes, /cvmfs on each, the VO-box deployed over SSH"
"${G[@]}" testbed down >/dev/null 2>&1 || true
"${G[@]}" testbed up --workers 2 --repo "$W/repo"
"${G[@]}" testbed status

step "6/6 smoke jobs: VO-box submitter -> sbatch -> JobAgent (32-bit JVM from /cvmfs) -> JobWrapper in the job container"
"${G[@]}" testbed smoke --jobs 4

cat >&2 <<MSG

The testbed is up (gridforge testbed status); its VO-box site file is /dev/shm/gridforge-testbed/gftb/site.yaml.
Try: ${G[*]} testbed smoke --jobs 20 | ${G[*]} site status /dev/shm/gridforge-testbed/gftb/site.yaml | ${G[*]} repo ls $W/repo containers/fs/singularity
Remove everything with: bash scripts/demo.sh --down
MSG
