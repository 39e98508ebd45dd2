#!/usr/bin/env bash
# ThreadSanitizer over the OpenMP kernels: builds tests/unit/threads.cpp (every parallel_for user and the
# chunked reductions, run on 1 and 4 threads) with clang++ -fsanitize=thread against LLVM's libomp, and runs
# it with Archer (libarcher.so, LLVM's OMPT tool that tells TSan about OpenMP's barriers and tasks, so that
# the runtime's own synchronisation is not reported as races). Any reported race fails the test.
# GCC's libgomp is not TSan-instrumented, so this job needs clang and libomp (Debian: clang, libomp-dev).
# Usage: tsan.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
archer=$(clang++ -print-resource-dir)/../../libarcher.so
[ -f "$archer" ] || archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | head -n 1)
[ -f "$archer" ] || { echo "tsan.sh: libarcher.so (LLVM's OpenMP TSan tool, package libomp-dev) not found" >&2; exit 1; }
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g1" -DSPIKELM_SANITIZE=thread -DSPIKELM_WERROR=ON -DSPIKELM_BUILD_BENCHMARKS=OFF \
  -DSPIKELM_BUILD_EXAMPLES=OFF -DSPIKELM_PACKAGING_TESTS=OFF -DSPIKELM_HEADER_TESTS=OFF \
  -DSPIKELM_SANITIZER_TESTS=OFF >/dev/null
cmake --build "$build" --target test_threads
export OMP_TOOL_LIBRARIES=$archer
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1 second_deadlock_stack=1"
"$build/tests/test_threads"
