#!/usr/bin/env bash
# Builds and runs every spikelm benchmark (one thread unless a benchmark says otherwise) and writes the
# results as JSON and text under benchmarks/results/<hostname>/, then renders them into docs/performance.md
# (benchmarks/render.py). Usage: bash benchmarks/run_all.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
spikelm_ensure_packages "${SPIKELM_DEBIAN_PACKAGES[@]}"
build=${1:-build-bench}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPIKELM_BUILD_BENCHMARKS=ON \
  -DSPIKELM_BUILD_TESTS=OFF -DSPIKELM_BUILD_EXAMPLES=OFF
cmake --build "$build" -j "$(nproc)"
out=benchmarks/results/$(hostname)
mkdir -p "$out"
for b in kernels neurons autograd equilibrium egru spike_gpt spiking_bert; do
  echo "== bench_$b"
  "$build/benchmarks/bench_$b" --benchmark_min_time=0.2 --benchmark_out="$out/$b.json" \
    --benchmark_out_format=json | tee "$out/$b.txt"
done
# The tables and plots of docs/performance.md (between its benchmark-results markers).
python3 benchmarks/render.py "$out"
