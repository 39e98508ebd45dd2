#!/usr/bin/env bash
# Installs the spikelm source tree into a scratch prefix, through a separate build tree configured with the
# tests, examples and benchmarks off, and checks what was installed.
# Usage: install.sh SOURCE_DIR BUILD_DIR PREFIX      (BUILD_DIR and PREFIX are wiped first)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
[ $# -eq 3 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR PREFIX" >&2; exit 2; }
src=$1 build=$2 prefix=$3

rm -rf "$build" "$prefix"
run "$CMAKE" -S "$src" -B "$build" "${PKG_CMAKE_ARGS[@]}" -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DSPIKELM_BUILD_TESTS=OFF -DSPIKELM_BUILD_EXAMPLES=OFF -DSPIKELM_BUILD_BENCHMARKS=OFF
run "$CMAKE" --build "$build"
run "$CMAKE" --install "$build"

status=0
cmakedir=$prefix/share/cmake/spikelm
for f in spikelmConfig.cmake spikelmConfigVersion.cmake spikelmTargets.cmake spikelmDependencies.cmake; do
  if [ ! -f "$cmakedir/$f" ]; then
    echo "FAIL: $cmakedir/$f was not installed" >&2
    status=1
  fi
done
# Every public header, and nothing else, under include/spikelm.
if ! diff -u <(cd "$src/include" && find spikelm -type f | LC_ALL=C sort) \
             <(cd "$prefix/include" && find spikelm -type f | LC_ALL=C sort); then
  echo "FAIL: the installed headers (+) differ from include/spikelm in the source tree (-)" >&2
  status=1
fi
# A header-only library installs no binaries.
if [ -n "$(find "$prefix" -type f \( -name '*.a' -o -name '*.so*' -o -perm -u+x \) -print -quit)" ]; then
  echo "FAIL: binaries were installed:" >&2
  find "$prefix" -type f \( -name '*.a' -o -name '*.so*' -o -perm -u+x \) >&2
  status=1
fi
if [ $status -eq 0 ]; then
  echo "spikelm installed into $prefix ($(find "$prefix" -type f | wc -l) files)"
fi
exit $status
