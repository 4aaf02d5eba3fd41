#!/usr/bin/env bash
# Sets up the machine, builds Lighter and trains the default example (iris) end to end with `lighter train`.
# Usage: scripts/run.sh [CONFIG] [lighter train options...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
config="${1:-$root/configs/iris.json}"
shift || true
exec "${LIGHTER_BUILD_DIR:-$root/build}/lighter" train "$config" "$@"
