#!/usr/bin/env bash
# Configures and builds Lighter (Release) into build/ (or $LIGHTER_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${LIGHTER_BUILD_DIR:-$root/build}"
jobs="${LIGHTER_JOBS:-$(nproc)}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$jobs"
