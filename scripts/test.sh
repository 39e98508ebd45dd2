#!/usr/bin/env bash
# Builds spikelm and runs every test: unit tests, one-TU-per-header compile tests (g++ and clang++), a
# compile check of the benchmarks (-fsyntax-only), install/consumer tests, the Conan package test, and the
# ASan+UBSan build of the suite.
# Usage: bash scripts/test.sh            (build directory: build/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
spikelm_ensure_packages "${SPIKELM_DEBIAN_PACKAGES[@]}"

jobs=$(nproc 2>/dev/null || echo 2)
build=${SPIKELM_BUILD_DIR:-build}
start=$(date +%s)
# Benchmarks are only compiled (-fsyntax-only) here; benchmarks/run_all.sh builds and runs them.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPIKELM_WERROR=ON -DSPIKELM_BENCHMARKS_SYNTAX_ONLY=ON
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 1500
echo "spikelm: all tests passed in $(( $(date +%s) - start )) s"
