#!/bin/sh
# Site Sonar probe "cvmfs": which repositories are mounted under $SITESONAR_CVMFS_ROOT (default
# /cvmfs; listing a repository directory also triggers autofs), each one's revision (the client's
# `user.revision` extended attribute), and the client cache: size limit and free space
# (CVMFS_CACHE_BASE, CVMFS_QUOTA_LIMIT from $SITESONAR_CVMFS_CONFIG_DIR, default /etc/cvmfs).
# SITESONAR_CVMFS_REPOS: the repositories to check (comma-separated, default alice.cern.ch).
. "$(dirname "$0")/lib/json.sh"

conf_dir=${SITESONAR_CVMFS_CONFIG_DIR:-/etc/cvmfs}
confval() {
  v=''
  for f in "$conf_dir/default.conf" "$conf_dir/default.local"; do
    [ -r "$f" ] || continue
    x=$(sed -n "s/^[ \t]*$1=//p" "$f" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/")
    [ -n "$x" ] && v=$x
  done
  echo "$v"
}

revision() {
  r=''
  if command -v attr >/dev/null 2>&1; then r=$(limit 10 attr -qg revision "$1" 2>/dev/null); fi
  if [ -z "$r" ] && command -v getfattr >/dev/null 2>&1; then r=$(limit 10 getfattr --only-values -n user.revision "$1" 2>/dev/null); fi
  echo "$r"
}

root_present=false
[ -d "$CVMFS_ROOT" ] && root_present=true
mounted=''
repos=''
for r in $CVMFS_REPOS; do
  d=$CVMFS_ROOT/$r
  ok=false
  if [ -d "$d" ] && [ -n "$(limit 20 ls -A "$d" 2>/dev/null | head -n 1)" ]; then ok=true; mounted="$mounted $r"; fi
  rev=''
  [ "$ok" = true ] && rev=$(revision "$d")
  repos="$repos $(jobj "$(jpair name "$(jstr "$r")")" "$(jpair mounted "$ok")" "$(jpair revision "$(jnum "$rev")")")"
done

cache_base=$(confval CVMFS_CACHE_BASE)
quota=$(confval CVMFS_QUOTA_LIMIT)
set -- $(df_kb "${cache_base:-/nonexistent}")
cache_free_mb=''
[ -n "$1" ] && cache_free_mb=$(($1 / 1024))

# shellcheck disable=SC2086
jobj \
  "$(jpair root "$(jstr "$CVMFS_ROOT")")" \
  "$(jpair root_present "$root_present")" \
  "$(jpair mounted "$(jarr_str $mounted)")" \
  "$(jpair repositories "$(jarr $repos)")" \
  "$(jpair cache_base "$(jstr_or_null "$cache_base")")" \
  "$(jpair cache_limit_mb "$(jnum "$quota")")" \
  "$(jpair cache_free_mb "$(jnum "$cache_free_mb")")"
echo
