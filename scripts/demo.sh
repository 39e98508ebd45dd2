#!/usr/bin/env bash
# The quick-start demo: builds the spikegpt program, trains a small SpikeGPT (2 layers, width 128, 0.45M
# parameters, context 64) on the bundled King James Bible for 2000 steps -- about two minutes on two cores --
# printing the loss, tokens/s, validation bits/char and the firing rates of the LIF populations as it goes,
# then scores the whole validation split and generates text in recurrent mode.
#
#   bash scripts/demo.sh                  # as documented in README.md
#   bash scripts/demo.sh --steps 500      # extra options go to `spikegpt train` (later options win)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
spikelm_ensure_packages "${SPIKELM_DEBIAN_PACKAGES[@]}"

build=${SPIKELM_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target spikegpt

spikegpt="$build/examples/spikegpt"
weights="$build/spikegpt-demo.safetensors"
start=$(date +%s)
"$spikegpt" train --layers 2 --width 128 --context 64 --batch 8 --steps 2000 --lr 2e-3 --log 100 --every 500 \
  --eval-chars 20000 --out "$weights" "$@"
"$spikegpt" eval --weights "$weights" --split validation
"$spikegpt" generate --weights "$weights" --prompt "And God said" --length 400 --seed 1
echo "demo: trained, evaluated and generated in $(($(date +%s) - start)) s"
