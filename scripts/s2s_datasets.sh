#!/bin/sh
# Fetches the CMU pronouncing dictionary for the sequence-to-sequence example (examples/s2s) and its test:
# Debian's pocketsphinx-en-us .deb is downloaded (never installed) into a temporary folder, and its
# usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict is copied to data/cmudict.dict at the repository root
# ("word PH O N E S" per line, alternates as "word(2)", no stress marks; 134,723 lines in 0.8+5prealpha+1-15).
#
# Usage: scripts/s2s_datasets.sh [--force]
#   Does nothing when data/cmudict.dict exists; --force fetches it again.
# Needs only sh, apt-get, dpkg-deb and tar. Nothing is downloaded from anywhere but the Debian archive.
set -eu

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "s2s_datasets.sh: unknown argument '$arg' (expected --force)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/data"
target="$out/cmudict.dict"

if [ "$force" -eq 0 ] && [ -s "$target" ]; then
  echo "s2s_datasets.sh: data/cmudict.dict is present (use --force to fetch it again)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

download() { (cd "$tmp" && apt-get download pocketsphinx-en-us >/dev/null 2>&1); }
if ! download; then
  # A fresh machine may have no package lists yet; refresh them when allowed to, then try once more.
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n apt-get update -qq >/dev/null 2>&1 || true
  fi
  download || {
    echo "s2s_datasets.sh: 'apt-get download pocketsphinx-en-us' failed (is the Debian archive reachable?)" >&2
    exit 1
  }
fi
deb=$(ls "$tmp"/pocketsphinx-en-us_*.deb)
member=./usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict
(cd "$tmp" && dpkg-deb --fsys-tarfile "$deb" | tar x "$member") || {
  echo "s2s_datasets.sh: $member not found in $(basename "$deb")" >&2
  exit 1
}
[ -s "$tmp/$member" ] || { echo "s2s_datasets.sh: $member is empty in $(basename "$deb")" >&2; exit 1; }

mkdir -p "$out"
# A temporary name in the same folder, then a rename: an interrupted run never leaves half a file looking complete.
cp "$tmp/$member" "$target.part.$$"
mv "$target.part.$$" "$target"
version=$(dpkg-deb -f "$deb" Version)
echo "s2s_datasets.sh: data/cmudict.dict: $(wc -l < "$target") lines (pocketsphinx-en-us $version)"
