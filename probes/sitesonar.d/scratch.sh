#!/bin/sh
# Site Sonar probe "scratch": free space in $TMPDIR and in the job directory (SITESONAR_WORKDIR,
# default the directory the probe runs in, which is where the JobAgent starts it).
. "$(dirname "$0")/lib/json.sh"

tmp=${TMPDIR:-/tmp}
work=${SITESONAR_WORKDIR:-$(pwd)}
cores=$(grep -c '^processor' "$PROC/cpuinfo" 2>/dev/null)
[ -n "$cores" ] && [ "$cores" -gt 0 ] 2>/dev/null || cores=1

place() {
  set -- "$1" $(df_kb "$1")
  if [ -n "$2" ]; then
    jobj "$(jpair path "$(jstr "$1")")" "$(jpair free_mb "$(($2 / 1024))")" "$(jpair total_mb "$(($3 / 1024))")" \
      "$(jpair free_mb_per_core "$(($2 / 1024 / cores))")" "$(jpair writable "$(if [ -w "$1" ]; then echo true; else echo false; fi)")"
  else
    jobj "$(jpair path "$(jstr "$1")")" "$(jpair free_mb null)" "$(jpair error "$(jstr "no such directory or df failed")")"
  fi
}

jobj "$(jpair tmpdir "$(place "$tmp")")" "$(jpair workdir "$(place "$work")")"
echo
