# shellcheck shell=bash
# Shared settings of the packaging test scripts (sourced, not run).
# The ctest registration (packaging_tests.cmake) passes these through the environment; each has a default so
# that the scripts also run by hand:
#   SPIKELM_PKG_CMAKE       cmake executable                      (default: cmake on PATH)
#   SPIKELM_PKG_GENERATOR   CMake generator of the sub-builds     (default: Ninja if found, else CMake's default)
#   SPIKELM_PKG_CXX         C++ compiler of the sub-builds        (default: CMake's choice)
#   SPIKELM_PKG_BUILD_TYPE  CMAKE_BUILD_TYPE of the sub-builds    (default: Release)
#   SPIKELM_PKG_VERSION     spikelm version the tests expect      (default: read from include/spikelm/config.hpp)

# shellcheck disable=SC2034  # used by the scripts that source this file
CMAKE=${SPIKELM_PKG_CMAKE:-cmake}

if [ -z "${SPIKELM_PKG_GENERATOR:-}" ] && command -v ninja >/dev/null 2>&1; then
  SPIKELM_PKG_GENERATOR=Ninja
fi

# Arguments common to every CMake configure of a sub-build.
PKG_CMAKE_ARGS=(-DCMAKE_BUILD_TYPE="${SPIKELM_PKG_BUILD_TYPE:-Release}")
if [ -n "${SPIKELM_PKG_GENERATOR:-}" ]; then
  PKG_CMAKE_ARGS+=(-G "$SPIKELM_PKG_GENERATOR")
fi
if [ -n "${SPIKELM_PKG_CXX:-}" ]; then
  PKG_CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER="$SPIKELM_PKG_CXX")
fi

# spikelm_pkg_version SRC: the version in SRC/include/spikelm/config.hpp (or SPIKELM_PKG_VERSION when set).
spikelm_pkg_version() {
  if [ -n "${SPIKELM_PKG_VERSION:-}" ]; then
    echo "$SPIKELM_PKG_VERSION"
    return
  fi
  local cfg=$1/include/spikelm/config.hpp part v=()
  for part in MAJOR MINOR PATCH; do
    v+=("$(sed -n "s/^#define SPIKELM_VERSION_${part} \([0-9][0-9]*\).*/\1/p" "$cfg")")
  done
  echo "${v[0]}.${v[1]}.${v[2]}"
}

# run CMD...: echoes a command, then runs it.
run() {
  echo "+ $*"
  "$@"
}
