#!/bin/sh
# Site Sonar probe "cpu": model, logical cores, architecture and the x86-64 microarchitecture level
# the CPU flags reach (the x86-64 psABI levels glibc checks: EL9 is built for x86-64-v2 and its
# ld.so refuses older CPUs). Reads $SITESONAR_PROC_ROOT/cpuinfo (default /proc/cpuinfo).
. "$(dirname "$0")/lib/json.sh"

CPUINFO=$PROC/cpuinfo
if [ ! -r "$CPUINFO" ]; then
  jobj "$(jpair error "$(jstr "cannot read $CPUINFO")")"
  echo
  exit 1
fi

awk -v uname_m="$(uname -m)" '
function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return s }
function trim(s) { sub(/^[ \t:]+/, "", s); sub(/[ \t]+$/, "", s); return s }
function val(line) { sub(/^[^:]*:/, "", line); return trim(line) }
# the flags of `level` missing from the CPU, space-separated ("" when all present)
function missing(level,   n, i, need, out) {
  n = split(LEVEL[level], need, " ")
  out = ""
  for (i = 1; i <= n; i++) if (!(need[i] in F)) out = out (out == "" ? "" : " ") need[i]
  return out
}
BEGIN {
  # x86-64 psABI microarchitecture levels, as /proc/cpuinfo names the flags
  # (pni = SSE3, abm = LZCNT, lahf_lm = LAHF/SAHF in 64-bit mode).
  LEVEL[1] = "lm cmov cx8 fpu fxsr mmx syscall sse sse2"
  LEVEL[2] = "cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3"
  LEVEL[3] = "avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
  LEVEL[4] = "avx512f avx512bw avx512cd avx512dq avx512vl"
}
/^processor[ \t]*:/ { n++ }
/^model name[ \t]*:/ && model == "" { model = val($0) }
/^vendor_id[ \t]*:/ && vendor == "" { vendor = val($0) }
/^flags[ \t]*:/ && flags == "" { flags = val($0) }
/^Features[ \t]*:/ && features == "" { features = val($0) }
/^CPU implementer[ \t]*:/ && impl == "" { impl = val($0) }
/^CPU part[ \t]*:/ && part == "" { part = val($0) }
/^physical id[ \t]*:/ { sockets[val($0)] = 1 }
END {
  arch = uname_m
  level = "null"; next_missing = ""
  if (flags != "") {
    nf = split(flags, fl, " ")
    for (i = 1; i <= nf; i++) F[fl[i]] = 1
    arch = ("lm" in F) ? "x86_64" : "i686"
    level = 0
    for (l = 1; l <= 4; l++) { if (missing(l) != "") break; level = l }
    if (level < 4) next_missing = missing(level + 1)
  } else if (features != "" || impl != "") {
    arch = "aarch64"
  }
  if (model == "" && impl != "") model = "ARM implementer " impl " part " part
  ns = 0; for (s in sockets) ns++
  printf "{\"model\":\"%s\",\"vendor\":%s,\"arch\":\"%s\",\"cores\":%d,\"sockets\":%s,", esc(model), vendor == "" ? "null" : "\"" esc(vendor) "\"", arch, n, ns == 0 ? "null" : ns
  printf "\"x86_64_level\":%s,", level
  printf "\"missing_for_next_level\":%s,", next_missing == "" ? "null" : "\"" next_missing "\""
  printf "\"aarch64\":%s}\n", arch == "aarch64" ? "true" : "false"
}' "$CPUINFO"
