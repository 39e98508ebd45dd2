#!/usr/bin/env bash
# Builds the quick-start demo and runs it on the data bundled in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
spikelm_ensure_packages "${SPIKELM_DEBIAN_PACKAGES[@]}"

build=${SPIKELM_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target quickstart
"$build/examples/quickstart" "$@"
