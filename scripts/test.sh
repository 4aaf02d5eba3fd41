#!/usr/bin/env bash
# Sets up the machine, builds Lighter, fetches the tests' data and runs every test (the Catch2 binary and the find_package consumer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
# Real data the tests read (quick when already there).
"$root/scripts/s2s_datasets.sh"
cd "${LIGHTER_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"${LIGHTER_JOBS:-$(nproc)}" "$@"
