# JSON output helpers every Site Sonar probe in ../ sources (POSIX sh, no root). A probe prints ONE
# JSON object on stdout, which is what the JobAgent parses (JAliEn alien/site/JobAgent.java runProbe:
# `bash <probe>.sh`, stdout joined and parsed as one object, EXITCODE and EXECUTION_TIME added).
# Values are built as already-encoded JSON text: jstr/jnum/jbool encode scalars, jpair makes a
# "key":value member, jobj and jarr join members/values.

# A JSON string literal of $1 (control characters dropped, \ " tab and newlines escaped).
jstr() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }')"
}

# A JSON number of $1, or null when $1 is not a decimal number.
jnum() {
  case "$1" in
    '' | *[!0-9.-]* | *.*.* | -*-* | *-) printf 'null' ;;
    *) printf '%s' "$1" | sed -e 's/^\(-\{0,1\}\)0*\([0-9]\)/\1\2/' ;;
  esac
}

# true / false for "1|yes|true|y" / "0|no|false|n", null otherwise.
jbool() {
  case "$1" in
    1 | yes | true | y) printf 'true' ;;
    0 | no | false | n) printf 'false' ;;
    *) printf 'null' ;;
  esac
}

# A string or null when empty.
jstr_or_null() {
  if [ -n "$1" ]; then jstr "$1"; else printf 'null'; fi
}

# "key":value (value already encoded).
jpair() {
  printf '%s:%s' "$(jstr "$1")" "$2"
}

# {member,member,...} from already-encoded members (empty arguments are skipped).
jobj() {
  _jo=''
  for _jm in "$@"; do [ -n "$_jm" ] && _jo="${_jo:+$_jo,}$_jm"; done
  printf '{%s}' "$_jo"
}

# [value,value,...] from already-encoded values.
jarr() {
  _ja=''
  for _jv in "$@"; do [ -n "$_jv" ] && _ja="${_ja:+$_ja,}$_jv"; done
  printf '[%s]' "$_ja"
}

# [ "s1", "s2", ... ] from plain strings.
jarr_str() {
  _js=''
  for _jv in "$@"; do _js="${_js:+$_js,}$(jstr "$_jv")"; done
  printf '[%s]' "$_js"
}

# The first line of a file, or nothing when it cannot be read.
first_line() {
  [ -r "$1" ] && head -n 1 "$1" 2>/dev/null
  return 0
}

# Run a command under a time limit (seconds) when coreutils' timeout exists: a hung mount (autofs,
# NFS) or resolver must not eat the probe's whole minute.
limit() {
  _jl=$1
  shift
  if command -v timeout >/dev/null 2>&1; then timeout "$_jl" "$@"; else "$@"; fi
}

# Free and total kB of the filesystem holding $1: "free total", or nothing.
df_kb() {
  [ -e "$1" ] || return 0
  limit 10 df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4, $2 }'
}

# The roots a probe reads (overridable so tests can point a probe at recorded files).
PROC=${SITESONAR_PROC_ROOT:-/proc}
SYS=${SITESONAR_SYS_ROOT:-/sys}
DEV=${SITESONAR_DEV_ROOT:-/dev}
CVMFS_ROOT=${SITESONAR_CVMFS_ROOT:-/cvmfs}
CVMFS_REPOS=$(printf '%s' "${SITESONAR_CVMFS_REPOS:-alice.cern.ch}" | tr ',' ' ')
