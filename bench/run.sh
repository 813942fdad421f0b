#!/usr/bin/env bash
# Runs every benchmark and prints each row as a ratio against its floor
# measured in the same run (medians of 5 repetitions). `--json` prints the
# rows as one JSON document instead. Build first: cmake --build build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for b in allocator backptr; do
  ./build/bench/memd_bench_$b --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_min_time=0.2 --benchmark_format=json > "$out/$b.json" 2> "$out/$b.err" \
    || { cat "$out/$b.err" >&2; exit 1; }
done
./build/bench/memd_bench_rpc 20000 > "$out/rpc.rpcjson"
python3 bench/report.py "$out"/*.json "$out/rpc.rpcjson" "$@"
