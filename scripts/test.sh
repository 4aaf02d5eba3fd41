#!/usr/bin/env bash
# Sets up the machine (packages and the examples' data), builds Lighter and runs every test (the Catch2 binary and the
# find_package consumer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "${LIGHTER_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"${LIGHTER_JOBS:-$(nproc)}" "$@"
