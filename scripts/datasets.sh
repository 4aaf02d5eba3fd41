#!/bin/sh
# Extracts scikit-learn's small datasets (iris, digits, diabetes) from Debian's python3-sklearn .deb
# (downloaded, never installed) and writes them as CSV files with a header row under examples/data/,
# each split deterministically into <name>_train.csv and <name>_test.csv: every 5th data row
# (rows 4, 9, 14, ... counting from 0) goes to test.
#
# Usage: scripts/datasets.sh [--force]
#   Does nothing when all outputs exist; --force regenerates them.
# Needs only sh, awk, gzip, apt-get and dpkg-deb.
set -eu

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "datasets.sh: unknown argument '$arg' (expected --force)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/examples/data"
names="iris digits diabetes"

missing=0
for n in $names; do
  for part in train test; do
    [ -s "$out/${n}_${part}.csv" ] || missing=1
  done
done
if [ "$force" -eq 0 ] && [ "$missing" -eq 0 ]; then
  echo "datasets.sh: examples/data is up to date (use --force to regenerate)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# The .deb is fetched into the temp dir so nothing is left behind; it is not installed.
(cd "$tmp" && apt-get download python3-sklearn >/dev/null 2>&1) || {
  echo "datasets.sh: 'apt-get download python3-sklearn' failed (is the Debian archive reachable?)" >&2
  exit 1
}
deb=$(ls "$tmp"/python3-sklearn_*.deb)
(cd "$tmp" && dpkg-deb --fsys-tarfile "$deb" | tar x --wildcards --no-anchored 'sklearn/datasets/data/*')
src=$(find "$tmp" -type d -path '*sklearn/datasets/data' | head -n 1)
[ -n "$src" ] || { echo "datasets.sh: sklearn/datasets/data not found in $deb" >&2; exit 1; }
version=$(dpkg-deb -f "$deb" Version)

mkdir -p "$out"

# split_rows NAME HEADER: reads header-less CSV rows on stdin, writes NAME_{train,test}.csv with HEADER.
# Written to temporary names first so an interrupted run never leaves half a dataset looking complete.
split_rows() {
  awk -v header="$2" -v train="$out/$1_train.csv.part" -v test="$out/$1_test.csv.part" '
    BEGIN { print header > train; print header > test }
    { if (NR % 5 == 0) print > test; else print > train }
  '
  mv "$out/$1_train.csv.part" "$out/$1_train.csv"
  mv "$out/$1_test.csv.part" "$out/$1_test.csv"
}

# iris.csv: first line "150,4,setosa,versicolor,virginica", then 4 features and a class id.
awk -F, 'NR == 1 { for (i = 3; i <= NF; i++) cls[i - 3] = $i; next }
         { sub(/\r$/, ""); printf "%s,%s,%s,%s,%s\n", $1, $2, $3, $4, cls[$5] }' "$src/iris.csv" |
  split_rows iris "sepal_length,sepal_width,petal_length,petal_width,species"

# digits.csv.gz: no header, 64 pixel values and the digit.
header=$(awk 'BEGIN { for (i = 0; i < 64; i++) printf "p%d,", i; printf "digit" }')
gzip -dc "$src/digits.csv.gz" | awk '{ sub(/\r$/, ""); print }' | split_rows digits "$header"

# diabetes: the raw (unscaled) features, space separated, and the target in another file (as 1.51e+02).
gzip -dc "$src/diabetes_target.csv.gz" > "$tmp/target.txt"
gzip -dc "$src/diabetes_data_raw.csv.gz" |
  awk -v targets="$tmp/target.txt" '{
    if ((getline t < targets) <= 0) { print "diabetes: fewer targets than rows" > "/dev/stderr"; exit 1 }
    line = $1; for (i = 2; i <= NF; i++) line = line "," $i
    printf "%s,%d\n", line, t + 0
  }' | split_rows diabetes "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target"

for n in $names; do
  tr=$(($(wc -l < "$out/${n}_train.csv") - 1))
  te=$(($(wc -l < "$out/${n}_test.csv") - 1))
  echo "datasets.sh: $n: $tr train + $te test rows (python3-sklearn $version)"
done
