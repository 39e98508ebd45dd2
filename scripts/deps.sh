#!/usr/bin/env bash
# Installs the Debian packages spikelm's build, tests, demo and benchmarks need, when any is missing.
# As root it runs apt-get; otherwise it prints the exact apt-get line and exits non-zero.
# Sourced by scripts/demo.sh and scripts/test.sh; run it directly to install everything.
set -euo pipefail

SPIKELM_DEBIAN_PACKAGES=(
  cmake ninja-build g++ clang libomp-dev libclang-rt-14-dev
  libeigen3-dev libxsimd-dev nlohmann-json3-dev doctest-dev libbenchmark-dev
  python3 python3-venv python3-pip
)

spikelm_ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    echo "spikelm: installing missing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "spikelm: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  spikelm_ensure_packages "${SPIKELM_DEBIAN_PACKAGES[@]}"
fi
