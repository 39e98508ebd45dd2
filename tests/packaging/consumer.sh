#!/usr/bin/env bash
# Configures, builds and runs the consumer project in consumer/ in one of three modes:
#   find_package SOURCE_DIR WORK_DIR PREFIX
#       find_package(spikelm <version> CONFIG REQUIRED) with CMAKE_PREFIX_PATH=PREFIX and the package registries
#       off; the consumer checks that spikelm_DIR lies inside PREFIX, then the program is built and run.
#   add_subdirectory SOURCE_DIR WORK_DIR
#       add_subdirectory(SOURCE_DIR spikelm); the program is built and run.
#   wrong_major_version SOURCE_DIR WORK_DIR PREFIX
#       find_package(spikelm 99 CONFIG REQUIRED) against PREFIX: the configure must fail, and its output must
#       name the package, the requested version and the installed version.
# WORK_DIR is wiped first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
[ $# -ge 3 ] || { echo "usage: $0 MODE SOURCE_DIR WORK_DIR [PREFIX]" >&2; exit 2; }
mode=$1 src=$2 work=$3 prefix=${4:-}
version=$(spikelm_pkg_version "$src")

rm -rf "$work"
mkdir -p "$work"
# --no-warn-unused-cli: CMake ignores the deprecated CMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY when
# CMAKE_FIND_USE_PACKAGE_REGISTRY is set; both are passed so that older and newer CMake behave alike.
args=(-S "$here/consumer" -B "$work/build" --no-warn-unused-cli "${PKG_CMAKE_ARGS[@]}"
      -DSPIKELM_CONSUMER_MODE="$mode" -DSPIKELM_EXPECTED_VERSION="$version")
case $mode in
  find_package | wrong_major_version)
    [ -n "$prefix" ] || { echo "$mode needs PREFIX" >&2; exit 2; }
    [ -f "$prefix/share/cmake/spikelm/spikelmConfig.cmake" ] ||
      { echo "FAIL: no spikelm installed in $prefix (run packaging/install first)" >&2; exit 1; }
    args+=(-DCMAKE_PREFIX_PATH="$prefix" -DSPIKELM_EXPECTED_PREFIX="$prefix"
           -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
           -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
    ;;
  add_subdirectory)
    args+=(-DSPIKELM_SOURCE_DIR="$src")
    ;;
  *)
    echo "unknown mode '$mode'" >&2
    exit 2
    ;;
esac

if [ "$mode" = wrong_major_version ]; then
  log=$work/configure.log
  echo "+ $CMAKE ${args[*]}"
  if "$CMAKE" "${args[@]}" >"$log" 2>&1; then
    cat "$log"
    echo "FAIL: find_package(spikelm 99 CONFIG REQUIRED) succeeded against spikelm $version" >&2
    exit 1
  fi
  cat "$log"
  # CMake wraps its messages; compare with all whitespace runs folded to one space.
  flat=$(tr -s '[:space:]' ' ' <"$log")
  status=0
  for want in 'Could not find a configuration file for package "spikelm"' \
              'compatible with requested version "99"' \
              "$prefix/share/cmake/spikelm/spikelmConfig.cmake, version: $version"; do
    if [[ "$flat" != *"$want"* ]]; then
      echo "FAIL: the configure output does not contain: $want" >&2
      status=1
    fi
  done
  [ $status -eq 0 ] && echo "PASS: find_package(spikelm 99) was refused by spikelm $version's version file"
  exit $status
fi

run "$CMAKE" "${args[@]}"
run "$CMAKE" --build "$work/build"
run "$work/build/spikelm_consumer"
