#!/bin/sh
# Site Sonar probe "memory": RAM and swap in MB, and per logical core (a job slot is one core).
# Reads $SITESONAR_PROC_ROOT/meminfo and /cpuinfo, and the cgroup v2 limit under $SITESONAR_SYS_ROOT.
. "$(dirname "$0")/lib/json.sh"

kb() { awk -v k="$1:" '$1 == k { print $2; exit }' "$PROC/meminfo" 2>/dev/null; }
ram=$(kb MemTotal)
swap=$(kb SwapTotal)
avail=$(kb MemAvailable)
cores=$(grep -c '^processor' "$PROC/cpuinfo" 2>/dev/null)
[ -n "$cores" ] && [ "$cores" -gt 0 ] 2>/dev/null || cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
limit=$(first_line "$SYS/fs/cgroup/memory.max")
case "$limit" in '' | max) limit_mb='' ;; *) limit_mb=$((limit / 1048576)) ;; esac

mb() { [ -n "$1" ] && echo $(($1 / 1024)); }
per() { [ -n "$1" ] && echo $(($1 / 1024 / cores)); }
jobj \
  "$(jpair ram_mb "$(jnum "$(mb "$ram")")")" \
  "$(jpair swap_mb "$(jnum "$(mb "$swap")")")" \
  "$(jpair available_mb "$(jnum "$(mb "$avail")")")" \
  "$(jpair cores "$(jnum "$cores")")" \
  "$(jpair ram_per_core_mb "$(jnum "$(per "$ram")")")" \
  "$(jpair swap_per_core_mb "$(jnum "$(per "$swap")")")" \
  "$(jpair cgroup_limit_mb "$(jnum "$limit_mb")")"
echo
