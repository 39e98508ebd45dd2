#!/usr/bin/env bash
# Builds the unit tests with the given sanitizers in a separate build tree (-O0 -g1: fastest to compile, still
# symbolized) and runs them. clang++ when installed: it builds this tree in half of g++'s time, its UBSan also
# checks float-to-integer overflow, and it compiles every test with -Werror (the main build is g++'s).
# Usage: sanitize.sh SOURCE_DIR BUILD_DIR SANITIZERS   (e.g. address,undefined)
set -euo pipefail
src=$1 build=$2 san=$3
cxx=$(command -v clang++ || command -v g++)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O0 -g1" -DSPIKELM_SANITIZE="$san" -DSPIKELM_WERROR=ON \
  -DSPIKELM_BUILD_BENCHMARKS=OFF -DSPIKELM_BUILD_EXAMPLES=OFF -DSPIKELM_PACKAGING_TESTS=OFF \
  -DSPIKELM_HEADER_TESTS=OFF -DSPIKELM_SANITIZER_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" -L unit --output-on-failure -j "$(nproc 2>/dev/null || echo 2)"
