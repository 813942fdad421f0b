#!/usr/bin/env bash
# The API reference builds from the headers (docs/Doxyfile) and documents
# every C function of memd.h and the C++ Client.
# Usage: api_docs_test.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
cd "$src"
sed "s|^OUTPUT_DIRECTORY .*|OUTPUT_DIRECTORY = $work|" docs/Doxyfile > "$work/Doxyfile"
doxygen "$work/Doxyfile"
[[ -f $work/html/index.html ]] || { echo "FAIL: no index.html"; exit 1; }
missing=0
for fn in $(grep -oE '\bmemd_[a-z_]+\(' client/include/memd/memd.h | tr -d '(' | sort -u); do
  grep -q "$fn" "$work/html/globals_func.html" || { echo "FAIL: $fn not in the reference"; missing=1; }
done
[[ -f $work/html/classmemd_1_1Client.html ]] || { echo "FAIL: memd::Client page missing"; missing=1; }
exit $missing
