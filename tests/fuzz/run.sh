#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in build-fuzz/ and runs
# each for a bounded time (default 60 s; FUZZ_SECONDS overrides), starting
# from the seed corpus in tests/fuzz/corpus/<target>. New inputs found go to a
# scratch copy, not the repository. Prints executions per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMD_BUILD_FUZZERS=ON -DMEMD_BUILD_TESTS=OFF -DMEMD_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD=ON \
  -DMEMD_SANITIZE=address,undefined -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link > /dev/null
cmake --build build-fuzz --target pool_ops_fuzzer parse_fuzzer
for target in pool_ops parse; do
  scratch=$(mktemp -d)
  cp tests/fuzz/corpus/$target/* "$scratch/"
  echo "== $target: ${seconds}s"
  ./build-fuzz/tests/fuzz/${target}_fuzzer -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=1 "$scratch" 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true
  ./build-fuzz/tests/fuzz/${target}_fuzzer -runs=0 "$scratch" > /dev/null 2>&1 || { echo "crash in $target"; exit 1; }
  rm -rf "$scratch"
done
