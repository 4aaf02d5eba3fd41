#!/bin/sh
# Fetches the real data of the RNN examples from Debian's archive (packages downloaded with `apt-get download` and
# unpacked with `dpkg-deb -x` into a temporary folder, never installed) and writes it into $LIGHTER_DATA_DIR
# (default: data/ at the repository root, not committed):
#
#   lang_train.tsv, lang_test.tsv   language identification: one "label<TAB>text" line per fortune-cookie entry
#                                   from fortunes (en), fortunes-de, -es, -it, -pl, -cs and -ru. Each entry has its
#                                   whitespace collapsed to single spaces and is kept when it is 20..MAXLEN
#                                   characters long (default 200); duplicates are dropped; every language is then
#                                   sampled to the same count (CAP entries, default 2500, chosen by a hash of the
#                                   text), and every 5th sampled entry of a language (in hash order) goes to test.
#                                   Lines are written in hash order, so the languages are mixed.
#                                   Left out: ASCII art (en/ascii-art, de/asciiart), es/off/ (offensive),
#                                   de/translations (half English), cs/klasik-sk (Slovak), .dat indexes, .u8 and
#                                   other symlinks (copies of the same files). All these files are UTF-8; a file
#                                   that is not is skipped with a message.
#   seattle-temps.csv               hourly temperatures (°F) of Seattle in 2010, "date,temp", from
#                                   python3-vega-datasets (vega_datasets/_data/seattle-temps.csv), copied unchanged.
#
# Usage: scripts/rnn_datasets.sh [--force] [lang|temps|all]
#   Does nothing for outputs that exist; --force regenerates them. Environment: LIGHTER_DATA_DIR, LANG_CAP (2500),
#   LANG_MAXLEN (200). Needs only sh, awk, sort, iconv, apt-get and dpkg-deb.
set -eu

force=0
what=all
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    lang|temps|all) what=$arg ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rnn_datasets.sh: unknown argument '$arg' (expected --force, lang, temps or all)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out=${LIGHTER_DATA_DIR:-$root/data}
cap=${LANG_CAP:-2500}
maxlen=${LANG_MAXLEN:-200}
langs="en de es it pl cs ru"

need_lang=0
need_temps=0
case "$what" in
  lang|all) if [ "$force" -eq 1 ] || [ ! -s "$out/lang_train.tsv" ] || [ ! -s "$out/lang_test.tsv" ]; then
              need_lang=1; fi ;;
esac
case "$what" in
  temps|all) if [ "$force" -eq 1 ] || [ ! -s "$out/seattle-temps.csv" ]; then need_temps=1; fi ;;
esac
if [ "$need_lang" -eq 0 ] && [ "$need_temps" -eq 0 ]; then
  echo "rnn_datasets.sh: $out is up to date (use --force to regenerate)"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$out"

# fetch PACKAGE: downloads PACKAGE's .deb into the temp folder and unpacks it into $tmp/x/PACKAGE.
fetch() {
  if ! (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1); then
    # A machine whose package lists were never fetched knows no .deb to download: update them once and retry.
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >/dev/null 2>&1 || true
    elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq >/dev/null 2>&1 || true; fi
    (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1) || {
      echo "rnn_datasets.sh: 'apt-get download $1' failed (is the Debian archive reachable?)" >&2
      exit 1
    }
  fi
  mkdir -p "$tmp/x/$1"
  dpkg-deb -x "$(ls "$tmp/$1"_*.deb)" "$tmp/x/$1"
}

if [ "$need_temps" -eq 1 ]; then
  fetch python3-vega-datasets
  src=$(find "$tmp/x/python3-vega-datasets" -type f -path '*vega_datasets/_data/seattle-temps.csv' | head -n 1)
  [ -n "$src" ] || { echo "rnn_datasets.sh: seattle-temps.csv not found in python3-vega-datasets" >&2; exit 1; }
  [ "$(head -n 1 "$src" | tr -d '\r')" = "date,temp" ] || {
    echo "rnn_datasets.sh: $src: expected the header 'date,temp'" >&2; exit 1; }
  cp "$src" "$out/seattle-temps.csv.part"
  mv "$out/seattle-temps.csv.part" "$out/seattle-temps.csv"
  echo "rnn_datasets.sh: seattle-temps.csv: $(awk 'END { print NR - 1 }' "$out/seattle-temps.csv") hourly rows" \
       "(python3-vega-datasets $(dpkg-deb -f "$tmp"/python3-vega-datasets_*.deb Version))"
fi

if [ "$need_lang" -eq 1 ]; then
  : > "$tmp/entries"
  for lang in $langs; do
    case "$lang" in
      en) pkg=fortunes; dir=usr/share/games/fortunes ;;
      *) pkg=fortunes-$lang; dir=usr/share/games/fortunes/$lang ;;
    esac
    fetch "$pkg"
    echo "rnn_datasets.sh: $lang: $pkg $(dpkg-deb -f "$tmp/$pkg"_*.deb Version)"
    # Only regular files directly in the language's folder (en: the top level, which in the fortunes package holds
    # English only); -type f leaves out the .u8 symlinks.
    find "$tmp/x/$pkg/$dir/" -maxdepth 1 -type f ! -name '*.dat' | LC_ALL=C sort > "$tmp/files"
    while read -r f; do
      case "$lang/$(basename "$f")" in
        en/ascii-art|de/asciiart|de/translations|cs/klasik-sk) continue ;;
      esac
      if ! iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1; then
        echo "rnn_datasets.sh: skipping $lang/$(basename "$f"): not UTF-8" >&2
        continue
      fi
      # One line per entry: "lang<TAB>text", whitespace (tabs, newlines) collapsed to single spaces.
      LC_ALL=C awk -v lang="$lang" '
        function flush() {
          gsub(/[ \t\r\f\v]+/, " ", text); sub(/^ /, "", text); sub(/ $/, "", text)
          if (text != "") print lang "\t" text
          text = ""
        }
        /^%[ \t\r]*$/ { flush(); next }
        { text = text " " $0 }
        END { flush() }' "$f" >> "$tmp/entries"
    done < "$tmp/files"
  done

  # Length in characters (bytes that are not UTF-8 continuation bytes), duplicates dropped (first wins, across
  # languages too), a 31-bit polynomial hash of the text as the sampling key. Ties in the hash are broken by text.
  LC_ALL=C awk -F '\t' -v maxlen="$maxlen" '
    BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i }
    {
      text = $2; t = text; cont = gsub(/[\200-\277]/, "", t)
      n = length(text) - cont
      if (n < 20 || n > maxlen || seen[text]++) next
      h = 7
      for (i = 1; i <= length(text); i++) h = (h * 131 + ord[substr(text, i, 1)]) % 2147483647
      print $1 "\t" h "\t" text
    }' "$tmp/entries" | LC_ALL=C sort -t "$(printf '\t')" -k1,1 -k2,2n -k3 > "$tmp/keyed"

  # First CAP entries of each language in hash order; every 5th of them to test.
  LC_ALL=C awk -F '\t' -v cap="$cap" -v dir="$tmp" '
    { total[$1]++; k = ++taken[$1]; if (k > cap) next
      print $2 "\t" $1 "\t" $3 > (dir "/" ((k % 5 == 0) ? "test" : "train") ".keyed") }
    END { for (l in total) if (total[l] < cap) {
            printf "rnn_datasets.sh: %s has only %d entries (< %d), classes are unbalanced\n", l, total[l], cap > "/dev/stderr" }
          for (l in total) printf "rnn_datasets.sh: %s: %d usable entries, %d kept\n", l, total[l], (total[l] < cap ? total[l] : cap) }
  ' "$tmp/keyed"
  for part in train test; do
    LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k2,2 -k3 "$tmp/$part.keyed" | cut -f 2- > "$out/lang_$part.tsv.part"
  done
  mv "$out/lang_train.tsv.part" "$out/lang_train.tsv"
  mv "$out/lang_test.tsv.part" "$out/lang_test.tsv"
  echo "rnn_datasets.sh: lang_train.tsv: $(wc -l < "$out/lang_train.tsv") texts, lang_test.tsv:" \
       "$(wc -l < "$out/lang_test.tsv") texts ($langs; $maxlen characters at most)"
fi
