#!/bin/sh
# Site Sonar probe "container": which container runtimes an unprivileged job can use, whether one is
# setuid, and a real run of the job image with the JobAgent's bind set (/cvmfs, and the job
# directory on /workdir; templates/vobox-contract.ts JOB_BIND_POINTS). A read-only sandbox must
# already hold every bind destination, so an image without /workdir fails here as every job would.
# Inputs: SITESONAR_IMAGE (default $SITESONAR_CVMFS_ROOT/<first repo>/containers/fs/singularity/default),
# SITESONAR_RUNTIME (apptainer|singularity|bwrap: force one), SITESONAR_APPTAINER_CONF.
. "$(dirname "$0")/lib/json.sh"

first_repo=${CVMFS_REPOS%% *}
image=${SITESONAR_IMAGE:-$CVMFS_ROOT/$first_repo/containers/fs/singularity/default}
cvmfs_apptainer=$CVMFS_ROOT/$first_repo/containers/bin/apptainer/current/bin/apptainer

# runtimes found: name=path (PATH first, then the Apptainer the repository ships)
found=''
setuid=false
for r in apptainer singularity bwrap podman; do
  p=$(command -v "$r" 2>/dev/null || true)
  [ -z "$p" ] && [ "$r" = apptainer ] && [ -x "$cvmfs_apptainer" ] && p=$cvmfs_apptainer
  [ -n "$p" ] || continue
  found="$found $r=$p"
  case "$r" in
    apptainer | singularity)
      for s in "$(dirname "$p")/../libexec/$r/bin/starter-suid" "/usr/libexec/$r/bin/starter-suid"; do
        [ -u "$s" ] && setuid=true
      done ;;
    bwrap) [ -u "$p" ] && setuid=true ;;
  esac
done

path_of() { for e in $found; do case "$e" in "$1="*) echo "${e#*=}"; return ;; esac; done; }
runtime=${SITESONAR_RUNTIME:-}
if [ -z "$runtime" ]; then
  for r in apptainer singularity bwrap; do [ -n "$(path_of "$r")" ] && { runtime=$r; break; }; done
fi
rt_path=$(path_of "$runtime")

# the real run
run_ok=false
run_exit=''
run_error=''
binds=''
if [ -z "$runtime" ] || [ -z "$rt_path" ]; then
  run_error="no unprivileged container runtime found (apptainer, singularity, bwrap)"
elif [ ! -d "$image" ]; then
  run_error="image not found: $image"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/sitesonar-container.XXXXXX")
  trap 'rm -rf "$work"' EXIT INT TERM
  set -- /bin/sh -c 'test -d /workdir && test -w /workdir && echo sitesonar-container-ok'
  binds=/workdir
  if [ -d "$CVMFS_ROOT" ]; then binds="/cvmfs /workdir"; fi
  case "$runtime" in
    apptainer | singularity)
      if [ -d "$CVMFS_ROOT" ]; then
        timeout 45 "$rt_path" exec -C -B "$CVMFS_ROOT:/cvmfs" -B "$work:/workdir" --pwd /workdir "$image" "$@" >"$work/out" 2>"$work/err" </dev/null
      else
        timeout 45 "$rt_path" exec -C -B "$work:/workdir" --pwd /workdir "$image" "$@" >"$work/out" 2>"$work/err" </dev/null
      fi ;;
    bwrap)
      if [ -d "$CVMFS_ROOT" ]; then
        timeout 45 "$rt_path" --unshare-user --unshare-pid --die-with-parent --ro-bind "$image" / --proc /proc --dev /dev \
          --ro-bind "$CVMFS_ROOT" /cvmfs --bind "$work" /workdir --chdir /workdir "$@" >"$work/out" 2>"$work/err" </dev/null
      else
        timeout 45 "$rt_path" --unshare-user --unshare-pid --die-with-parent --ro-bind "$image" / --proc /proc --dev /dev \
          --bind "$work" /workdir --chdir /workdir "$@" >"$work/out" 2>"$work/err" </dev/null
      fi ;;
    *) echo "unknown runtime $runtime" >"$work/err"; false ;;
  esac
  run_exit=$?
  if [ "$run_exit" = 0 ] && grep -q sitesonar-container-ok "$work/out"; then
    run_ok=true
  else
    run_error=$(tail -n 3 "$work/err" | cut -c 1-300)
    [ "$run_exit" = 124 ] && run_error="timed out after 45 s"
    [ -n "$run_error" ] || run_error="exit code $run_exit"
  fi
fi

# overlay / underlay: the kernel's overlay support and Apptainer's configuration
overlay_kernel=false
grep -qw overlay "$PROC/filesystems" 2>/dev/null && overlay_kernel=true
conf=${SITESONAR_APPTAINER_CONF:-}
if [ -z "$conf" ]; then
  for c in /etc/apptainer/apptainer.conf /etc/singularity/singularity.conf "$CVMFS_ROOT/$first_repo/containers/bin/apptainer/current/etc/apptainer/apptainer.conf"; do
    [ -r "$c" ] && { conf=$c; break; }
  done
fi
confval() { [ -n "$conf" ] && [ -r "$conf" ] && sed -n "s/^[ \t]*$1[ \t]*=[ \t]*//p" "$conf" | head -n 1 | tr -d ' \t'; }

names=''
for e in $found; do names="$names ${e%%=*}"; done
# shellcheck disable=SC2086
jobj \
  "$(jpair runtimes "$(jarr_str $names)")" \
  "$(jpair setuid_runtime "$setuid")" \
  "$(jpair runtime "$(jstr_or_null "$runtime")")" \
  "$(jpair image "$(jstr "$image")")" \
  "$(jpair binds "$(jstr_or_null "$(echo $binds)")")" \
  "$(jpair run_ok "$run_ok")" \
  "$(jpair run_exitcode "$(jnum "$run_exit")")" \
  "$(jpair run_error "$(jstr_or_null "$run_error")")" \
  "$(jpair overlay_kernel "$overlay_kernel")" \
  "$(jpair overlay_config "$(jstr_or_null "$(confval 'enable overlay')")")" \
  "$(jpair underlay_config "$(jstr_or_null "$(confval 'enable underlay')")")" \
  "$(jpair apptainer_conf "$(jstr_or_null "$conf")")"
echo
