#!/usr/bin/env bash
# Installs what memd needs, builds it, and runs the whole test suite:
#   1. build/       unit, integration (real daemons and client processes),
#                   install (CMake package, pkg-config, ctypes), soak (30 s)
#   2. build-asan/  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. build-tsan/  the same under ThreadSanitizer (suppressions: tests/tsan.supp)
#   4. build-fuzz/  each libFuzzer target for FUZZ_SECONDS (default 60)
# MEMD_TEST_QUICK=1 runs only step 1. Stops at the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh

step() { echo; echo "=== $*"; }

step "build and test (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_BUILD_TESTS=ON
cmake --build build
(cd build && ctest --output-on-failure --timeout 600 -j2)
[[ ${MEMD_TEST_QUICK:-0} == 1 ]] && exit 0

# Sanitizer builds skip the install test (Python cannot preload the
# sanitizer runtimes into ctypes) and the soak (its heap-growth bound is
# about memd, not the sanitizers' own bookkeeping).
step "AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_SANITIZE=address,undefined \
  -DMEMD_BUILD_BENCH=OFF
cmake --build build-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure --timeout 600 -j2 -LE "install|soak")

step "ThreadSanitizer"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_SANITIZE=thread \
  -DMEMD_BUILD_BENCH=OFF
cmake --build build-tsan
(cd build-tsan && TSAN_OPTIONS="suppressions=$PWD/../tests/tsan.supp halt_on_error=1 exitcode=66" \
  ctest --output-on-failure --timeout 900 -j2 -LE "install|soak")

step "fuzzing (${FUZZ_SECONDS:-60} s per target)"
bash tests/fuzz/run.sh
