#!/usr/bin/env bash
# Installs what memd needs, builds it, starts memd with its embedded default
# configuration (one pool "default" of 256 MiB on unix:///run/memd/memd.sock,
# or $MEMD_LISTEN), shows `memctl stats`, and keeps memd in the foreground
# until Ctrl-C (SIGINT), which stops it (its socket goes; the pools' state
# stays for the next start, docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
# Only what running memd needs: the daemon and memctl (the tests and
# benchmarks take most of a full build; scripts/test.sh builds those).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMD_BUILD_TESTS=OFF -DMEMD_BUILD_BENCH=OFF
cmake --build build --target memd memctl

address=${MEMD_LISTEN:-unix:///run/memd/memd.sock}
./build/server/memd &
memd_pid=$!
trap 'kill -INT $memd_pid 2>/dev/null; wait $memd_pid' INT TERM
for _ in $(seq 200); do
  ./build/client/memctl/memctl --address "$address" health >/dev/null 2>&1 && break
  kill -0 "$memd_pid" 2>/dev/null || { echo "memd exited; see its messages above" >&2; exit 1; }
  sleep 0.05
done
./build/client/memctl/memctl --address "$address" stats
echo "memd is running (pid $memd_pid) on $address; press Ctrl-C to stop it."
wait "$memd_pid"
