#!/usr/bin/env bash
# Runs every benchmark and prints each row as a ratio against its floor
# measured in the same run (medians of 5 repetitions; rows L, R, Q medians of 3). `--json` prints the
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
# Row L: frames through memd channels vs a futex frame ring written by hand
# (starts a memd of its own; 1/4/16 pairs at 64 KiB and 1080p, floor and memd
# interleaved, medians of 3).
./build/bench/memd_bench_handoff --seconds 3 --reps 3 > "$out/handoff.handoffjson"
# Rows R and Q print their own tables (to stderr, so --json/--markdown stay
# clean); each is skipped, saying why, when what it needs is absent.
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "row R skipped: /usr/bin/python3 with numpy is absent" >&2
elif ! PYTHONPATH=build/python /usr/bin/python3 -c 'import memd' 2>/dev/null; then
  echo "row R skipped: the memd Python module is not built (build/python)" >&2
else
  /usr/bin/python3 bench/python_bench.py build --frames 200 --reps 3 --sizes 1080p >&2
fi
if ! command -v gst-launch-1.0 >/dev/null; then
  echo "row Q skipped: gst-launch-1.0 is absent" >&2
elif ! GST_PLUGIN_PATH=build/gst gst-inspect-1.0 memdsink >/dev/null 2>&1; then
  echo "row Q skipped: the memd GStreamer plugin is not built (build/gst)" >&2
elif ! gst-inspect-1.0 shmsink >/dev/null 2>&1; then
  echo "row Q skipped: shmsink (gst-plugins-bad) is absent" >&2
else
  /usr/bin/python3 bench/gst_bench.py build --reps 3 >&2
fi
python3 bench/report.py "$out"/*.json "$out/rpc.rpcjson" "$out/frames.framejson" "$out/pipeline.pipejson" \
  "$out/handoff.handoffjson" "$@"
