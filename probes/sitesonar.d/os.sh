#!/bin/sh
# Site Sonar probe "os": the node's OS (os-release), kernel, architecture and cgroup version.
# Inputs: SITESONAR_OS_RELEASE (file; default /etc/os-release, then /usr/lib/os-release, as
# os-release(5) says), SITESONAR_PROC_ROOT, SITESONAR_SYS_ROOT, SITESONAR_ARCH.
. "$(dirname "$0")/lib/json.sh"

REL=${SITESONAR_OS_RELEASE:-}
if [ -z "$REL" ]; then
  for f in /etc/os-release /usr/lib/os-release; do
    if [ -r "$f" ]; then REL=$f; break; fi
  done
fi

# The value of KEY in the os-release file, quotes removed.
osr() {
  [ -n "$REL" ] && [ -r "$REL" ] || return 0
  sed -n "s/^$1=//p" "$REL" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

id=$(osr ID)
version_id=$(osr VERSION_ID)
major=${version_id%%.*}
kernel=$(first_line "$PROC/sys/kernel/osrelease")
[ -n "$kernel" ] || kernel=$(uname -r)
arch=${SITESONAR_ARCH:-$(uname -m)}

if [ -f "$SYS/fs/cgroup/cgroup.controllers" ]; then
  cgroup=2
elif [ -d "$SYS/fs/cgroup/unified" ]; then
  cgroup=hybrid
elif [ -d "$SYS/fs/cgroup" ]; then
  cgroup=1
else
  cgroup=''
fi

jobj \
  "$(jpair id "$(jstr_or_null "$id")")" \
  "$(jpair version_id "$(jstr_or_null "$version_id")")" \
  "$(jpair major "$(jstr_or_null "$major")")" \
  "$(jpair id_like "$(jstr_or_null "$(osr ID_LIKE)")")" \
  "$(jpair name "$(jstr_or_null "$(osr PRETTY_NAME)")")" \
  "$(jpair os_release "$(jstr_or_null "$REL")")" \
  "$(jpair kernel "$(jstr_or_null "$kernel")")" \
  "$(jpair arch "$(jstr_or_null "$arch")")" \
  "$(jpair cgroup "$(jstr_or_null "$cgroup")")"
echo
