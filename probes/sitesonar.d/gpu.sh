#!/bin/sh
# Site Sonar probe "gpu": GPU devices and driver. NVIDIA: /dev/nvidia<N>, the driver version from
# $SITESONAR_PROC_ROOT/driver/nvidia/version, names from nvidia-smi when present. AMD: /dev/kfd,
# render nodes, the amdgpu module version under $SITESONAR_SYS_ROOT.
. "$(dirname "$0")/lib/json.sh"

nv=0
for d in "$DEV"/nvidia[0-9]*; do [ -e "$d" ] && nv=$((nv + 1)); done
nv_driver=$(sed -n 's/.*Kernel Module[ \t]*\([0-9][0-9.]*\).*/\1/p' "$PROC/driver/nvidia/version" 2>/dev/null | head -n 1)
nv_names=''
if command -v nvidia-smi >/dev/null 2>&1; then
  nv_names=$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort | uniq -c | awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s%s x %s", (NR > 1 ? ", " : ""), c, $0 }')
fi
render=0
for d in "$DEV"/dri/renderD*; do [ -e "$d" ] && render=$((render + 1)); done
kfd=false
[ -e "$DEV/kfd" ] && kfd=true
amd_driver=$(first_line "$SYS/module/amdgpu/version")

jobj \
  "$(jpair nvidia_devices "$nv")" \
  "$(jpair nvidia_driver "$(jstr_or_null "$nv_driver")")" \
  "$(jpair nvidia_gpus "$(jstr_or_null "$nv_names")")" \
  "$(jpair amd_kfd "$kfd")" \
  "$(jpair amd_driver "$(jstr_or_null "$amd_driver")")" \
  "$(jpair render_nodes "$render")" \
  "$(jpair has_gpu "$(if [ "$nv" -gt 0 ] || [ "$kfd" = true ]; then echo true; else echo false; fi)")"
echo
