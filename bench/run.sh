#!/usr/bin/env bash
# Runs every benchmark and prints each row as a ratio against its floor
# measured in the same run (medians of 5 repetitions). `--json` prints the
# rows as one JSON document instead. Build first: cmake --build build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for b in allocator backptr; do
  # Repetitions of memd and of its floor are interleaved at random, so drift
  # of a shared machine hits both sides of a ratio alike.
  ./build/bench/memd_bench_$b --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_enable_random_interleaving=true \
    --benchmark_min_time=0.2 --benchmark_format=json > "$out/$b.json" 2> "$out/$b.err" \
    || { cat "$out/$b.err" >&2; exit 1; }
done
./build/bench/memd_bench_rpc 20000 > "$out/rpc.rpcjson"

# Row F needs a daemon with room for a few 4K frames.
sock=$out/memd.sock
./build/server/memd --listen "unix://$sock" --instance "memd-bench-$$" --pool default=256MiB \
  --log-level error &
memd_pid=$!
trap 'kill $memd_pid 2>/dev/null; wait $memd_pid 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 200); do ./build/client/memctl/memctl --address "unix://$sock" health >/dev/null 2>&1 && break; sleep 0.05; done
MEMD_ADDRESS=unix://$sock ./build/bench/memd_bench_frames 300 > "$out/frames.framejson"
# Row P: the FFmpeg pipeline through memd channels vs through pipes (own daemon).
python3 bench/pipeline_bench.py build "$out/pipeline.pipejson" --seconds 8 --reps 3
python3 bench/report.py "$out"/*.json "$out/rpc.rpcjson" "$out/frames.framejson" "$out/pipeline.pipejson" "$@"
