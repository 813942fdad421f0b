#!/usr/bin/env bash
# Runs the three-process pipeline on a private memd, in one command:
#   bash examples/pipeline/run.sh [1080p|4k] [pass|overlay|scale]
# Installs what is needed, builds, makes a few seconds of input with the
# ffmpeg CLI's lavfi test source (no downloads), starts memd on a temporary
# socket, runs decode -> filter -> encode connected by memd channels, shows
# `memctl stats` while frames are in flight, and checks the output decodes
# with every frame. MEMD_PIPELINE_SECONDS sets the input length (default 4).
set -euo pipefail
cd "$(dirname "$0")/../.."
resolution=${1:-1080p}
mode=${2:-overlay}
seconds=${MEMD_PIPELINE_SECONDS:-4}
case "$resolution" in
  1080p) size=1920x1080 ;;
  4k) size=3840x2160 ;;
  *) echo "resolution must be 1080p or 4k, not '$resolution'" >&2; exit 2 ;;
esac

bash scripts/setup-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target memd memctl memd_pipeline_decode memd_pipeline_filter memd_pipeline_encode

work=$(mktemp -d /tmp/memd-pipeline-XXXXXX)
bin=build/examples/pipeline
memd_pid=""
cleanup() {
  [[ -n $memd_pid ]] && kill -TERM "$memd_pid" 2>/dev/null && wait "$memd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== input: $seconds s of $size at 25 fps ($work/in.mkv)"
ffmpeg -v error -f lavfi -i "testsrc2=size=$size:rate=25:duration=$seconds" \
  -c:v mpeg4 -q:v 3 -pix_fmt yuv420p "$work/in.mkv"

export MEMD_ADDRESS="unix://$work/memd.sock"
build/server/memd --listen "$MEMD_ADDRESS" --instance "pipeline-$$" --pool default=1GiB \
  --log-level warn &
memd_pid=$!
for _ in $(seq 200); do
  build/client/memctl/memctl health >/dev/null 2>&1 && break
  sleep 0.05
done

echo "== decode -> filter ($mode) -> encode over memd channels 'raw' and 'filtered'"
"$bin/memd_pipeline_decode" --input "$work/in.mkv" --report "$work/decode.json" &
decode=$!
"$bin/memd_pipeline_filter" --mode "$mode" --width 1280 --height 720 --report "$work/filter.json" &
filter=$!
"$bin/memd_pipeline_encode" --output "$work/out.mkv" --report "$work/encode.json" &
encode=$!
for _ in $(seq 200); do  # until frames are in flight
  build/client/memctl/memctl stats --json 2>/dev/null | grep -q '"live_buffers": [1-9]' && break
  sleep 0.02
done
echo "== memctl stats while frames are in flight"
build/client/memctl/memctl stats || true
echo "== memctl clients: the three stages, each on a lane (VIA)"
build/client/memctl/memctl clients || true
status=0
for pid in $decode $filter $encode; do wait "$pid" || status=1; done
echo "== stage reports"
cat "$work/decode.json" "$work/filter.json" "$work/encode.json"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
  -of csv=p=0 "$work/out.mkv")
expected=$((seconds * 25))
echo "== output: $frames frames decode from out.mkv (expected $expected)"
[[ $status == 0 && $frames == "$expected" ]] || { echo "pipeline FAILED" >&2; exit 1; }
echo "pipeline OK"
