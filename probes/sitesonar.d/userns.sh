#!/bin/sh
# Site Sonar probe "userns": can an unprivileged process make a user namespace (what unprivileged
# Apptainer and bubblewrap need)? Reads user.max_user_namespaces, kernel.unprivileged_userns_clone
# (Debian/Ubuntu kernels; absent = allowed) and kernel.apparmor_restrict_unprivileged_userns
# (Ubuntu 23.10+: 1 = only AppArmor-profiled programs get full capabilities in a new user
# namespace), then tries one with `unshare -U` when it exists.
. "$(dirname "$0")/lib/json.sh"

max=$(first_line "$PROC/sys/user/max_user_namespaces")
clone=$(first_line "$PROC/sys/kernel/unprivileged_userns_clone")
aa=$(first_line "$PROC/sys/kernel/apparmor_restrict_unprivileged_userns")

test_result=not-run
if command -v unshare >/dev/null 2>&1; then
  if unshare -U true >/dev/null 2>&1; then test_result=ok; else test_result=failed; fi
fi

enabled=true
reason=''
if [ "$max" = 0 ]; then enabled=false; reason='user.max_user_namespaces is 0'; fi
if [ "$clone" = 0 ]; then enabled=false; reason="${reason:+$reason; }kernel.unprivileged_userns_clone is 0"; fi
if [ "$test_result" = failed ]; then enabled=false; reason="${reason:+$reason; }unshare -U failed"; fi
restricted=false
[ "$aa" = 1 ] && restricted=true

jobj \
  "$(jpair enabled "$enabled")" \
  "$(jpair apparmor_restricted "$restricted")" \
  "$(jpair max_user_namespaces "$(jnum "$max")")" \
  "$(jpair unprivileged_userns_clone "$(jnum "$clone")")" \
  "$(jpair apparmor_restrict_unprivileged_userns "$(jnum "$aa")")" \
  "$(jpair unshare_test "$(jstr "$test_result")")" \
  "$(jpair reason "$(jstr_or_null "$reason")")"
echo
