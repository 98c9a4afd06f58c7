#!/usr/bin/env bash
# Start a Docker engine when none answers (no systemd on CI machines). Idempotent.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "setup: dockerd is not installed (apt-get install docker.io)" >&2; exit 1
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker || true
fi
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/gridforge-dockerd.log)" >&2
  # containerd is started by dockerd itself when no system containerd runs.
  nohup setsid dockerd >/var/log/gridforge-dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "setup: dockerd did not answer within 60 s; see /var/log/gridforge-dockerd.log" >&2
tail -20 /var/log/gridforge-dockerd.log >&2 || true
exit 1
