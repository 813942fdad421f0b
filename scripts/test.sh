#!/usr/bin/env bash
# Installs what memd needs, builds it with its tests, and runs the whole test
# suite (unit, integration with real daemons and client processes, install).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMD_BUILD_TESTS=ON
cmake --build build
cd build
ctest --output-on-failure --timeout 600 -j2
