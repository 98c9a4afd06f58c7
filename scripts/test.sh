#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every vitest suite against the real engines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx vitest run "$@"
