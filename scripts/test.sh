#!/usr/bin/env bash
# Installs what memd needs, builds it, and runs the whole test suite:
#   1. build/       everything: unit, integration (real daemons and client
#                   processes), gst (gst-launch-1.0), python (pytest), abi,
#                   monitoring, docs, install (CMake package, pkg-config,
#                   Python, GStreamer plugin), soak (30 s)
#   2. build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: the C++
#                   suites (unit, integration, the FFmpeg pipeline)
#   3. build-tsan/  ThreadSanitizer (suppressions: tests/tsan.supp): unit and
#                   the integration suites where threads meet (below)
# The fuzz targets run in steps 1 and 2 as ctest's fuzz.*_replay (the seed
# corpus and its random mutations, 10 s each: tests/fuzz/replay_main.cc);
# coverage-guided fuzzing with libFuzzer (clang, a build of its own) is
# tests/fuzz/run.sh, run by hand or nightly, not in CI.
# MEMD_TEST_QUICK=1 runs only step 1. Stops at the first failing step.
# CI runs this on 2 cores within 45 minutes: benchmarks are not built, every
# build is a unity build (CMAKE_UNITY_BUILD: the gRPC and protobuf headers,
# most of each file's compile time, are parsed once per 8 files, 16 in the
# sanitizer builds: a whole build
# takes about half the time), every build is at -O1, and the sanitizer builds
# build only what their tests need, at -O1 -g1 (line tables are enough for the
# sanitizers' reports; full debug info doubles link time). Benchmarks and
# releases build at -O2 (RelWithDebInfo's default), outside CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh

# Each step line says how long the run took so far (CI's time is bounded).
step() { echo; echo "=== [$((SECONDS / 60)) min $((SECONDS % 60)) s] $*"; }
trap 'echo "=== [$((SECONDS / 60)) min $((SECONDS % 60)) s] test.sh ends (exit $?)"' EXIT

step "build and test (RelWithDebInfo)"
# -O1 -g: a third less compile time than RelWithDebInfo's -O2; full debug
# information stays (CheckBrokenTest reads the daemon's locals with gdb).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_BUILD_TESTS=ON \
  -DMEMD_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG"
cmake --build build
(cd build && ctest --output-on-failure --timeout 600 -j2)
[[ ${MEMD_TEST_QUICK:-0} == 1 ]] && exit 0

# The sanitizer builds leave out what cannot load an instrumented library
# (gst-launch-1.0, python3: the runtime must come first), the install test
# (the same reason) and the soak (its heap-growth bound is about memd, not the
# sanitizers' bookkeeping); HardeningTest runs memd under strace.
# UCX is left out too: its memory hooks fight the sanitizers' allocators, and
# the bridge suites (network namespaces, label `bridge`) run in the first pass.
# Unity batches of 16 files (not CMake's 8): the sanitizers' instrumentation of
# the gRPC and protobuf headers is the dearest part of each batch; measured
# 11 min 43 s instead of about 12 min 55 s for the ASan targets on 2 cores.
sanitized=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DMEMD_BUILD_BENCH=OFF -DMEMD_BUILD_GST=OFF -DMEMD_BUILD_PYTHON=OFF
  -DMEMD_BUILD_UCX=OFF
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
# Both sanitizer builds: the threaded integration suites, unit, arenas and the
# FFmpeg pipeline; ASan adds the single-threaded surface suites
# (memd_surface_tests: argument checking, config, memctl, deploy, ...).
sanitized_targets=(memd memctl memd_test_client memd_unit_tests memd_integration_tests
  memd_arena_tests memd_arena_client memd_pipeline_tests)

step "AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_SANITIZE=address,undefined \
  "${sanitized[@]}"
cmake --build build-asan --target "${sanitized_targets[@]}" memd_surface_tests memd_trace_client \
  memd_trace_tests pool_ops_replay parse_replay
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure --timeout 600 -j2 -L "unit|integration|arena|trace|fuzz" -E "HardeningTest")

# ThreadSanitizer finds races where threads meet: the pool and ledger (unit),
# sessions and lanes, channels, restarts and crashes, the metrics endpoint,
# shared buffers, the client's own threads and the arenas' per-thread caches
# (label arena). The suites of single-threaded argument checking (bad input,
# config, memctl, deploy, ...: memd_surface_tests) run in the passes above; this
# build leaves their binary out.
tsan_suites="^(Threads|Channel|ChannelDrops|Lane|Crash|Restart|Integrity|Bounds|Sharing|BufferPool|Metrics|Logging|Pipeline|Connect)Test[.]"
step "ThreadSanitizer"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_SANITIZE=thread \
  "${sanitized[@]}"
cmake --build build-tsan --target "${sanitized_targets[@]}"
(cd build-tsan && TSAN_OPTIONS="suppressions=$PWD/../tests/tsan.supp halt_on_error=1 exitcode=66" \
  ctest --output-on-failure --timeout 900 -j2 -L unit &&
  TSAN_OPTIONS="suppressions=$PWD/../tests/tsan.supp halt_on_error=1 exitcode=66" \
  ctest --output-on-failure --timeout 900 -j2 -L integration -R "$tsan_suites" &&
  TSAN_OPTIONS="suppressions=$PWD/../tests/tsan.supp halt_on_error=1 exitcode=66" \
  ctest --output-on-failure --timeout 900 -j2 -L arena)

