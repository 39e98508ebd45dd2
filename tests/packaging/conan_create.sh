#!/usr/bin/env bash
# Runs `conan create` on the recipe at the root of the source tree with the offline Debian 12 profile
# (conan/profiles/debian12: Eigen and xsimd from libeigen3-dev / libxsimd-dev, no remote), which builds
# the package and then builds and runs test_package/.
#
# Usage: conan_create.sh SOURCE_DIR WORK_DIR
#   Uses `conan` from PATH when it is Conan 2; otherwise creates WORK_DIR/venv (python3 -m venv) and
#   pip-installs Conan 2 there, reusing it on later runs. CONAN_HOME is WORK_DIR/conan-home, so the user's
#   own Conan cache and remotes are never touched. test_package is built under WORK_DIR, not in the sources.
# Exit status: 0 on success, 77 (ctest SKIP_RETURN_CODE) when Conan is not installed and PyPI cannot be
# reached, anything else is a failure.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$(cd "$1" && pwd)
work=$2
mkdir -p "$work"
work=$(cd "$work" && pwd)

CONAN_REQUIREMENT=${SPIKELM_CONAN_REQUIREMENT:-conan>=2.1,<3}

is_conan2() {
  local v
  v=$("$1" --version 2>/dev/null) || return 1
  [[ "$v" =~ [Cc]onan\ version\ 2\. ]]
}

conan=""
if command -v conan >/dev/null 2>&1 && is_conan2 "$(command -v conan)"; then
  conan=$(command -v conan)
  echo "using $($conan --version) from PATH ($conan)"
elif [ -x "$work/venv/bin/conan" ] && is_conan2 "$work/venv/bin/conan"; then
  conan=$work/venv/bin/conan
  echo "using $($conan --version) from $work/venv"
else
  python=$(command -v python3 || true)
  if [ -z "$python" ]; then
    echo "FAIL: neither Conan 2 nor python3 is on PATH" >&2
    exit 1
  fi
  echo "Conan 2 is not on PATH: installing '$CONAN_REQUIREMENT' into $work/venv"
  rm -rf "$work/venv"
  if ! "$python" -m venv "$work/venv"; then
    echo "FAIL: '$python -m venv' failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
  log=$work/pip-install.log
  if ! "$work/venv/bin/python" -m pip install --disable-pip-version-check --retries 2 --timeout 30 \
      "$CONAN_REQUIREMENT" >"$log" 2>&1; then
    cat "$log"
    # Connection errors (no network, no DNS, a proxy refusing) mean "cannot test here", not a failure.
    if grep -Eqi 'NewConnectionError|Max retries exceeded|Temporary failure in name resolution|Name or service not known|Network is unreachable|Connection refused|ConnectTimeout|Read timed out|ProxyError|connection broken|Failed to establish a new connection' "$log"; then
      rm -rf "$work/venv"
      echo "SKIP: Conan 2 is not installed and PyPI cannot be reached to pip-install it." >&2
      echo "      Install Conan 2 (pip install 'conan>=2.1') and put it on PATH to run this test." >&2
      exit 77
    fi
    rm -rf "$work/venv"
    echo "FAIL: pip could not install '$CONAN_REQUIREMENT' (see the log above)" >&2
    exit 1
  fi
  conan=$work/venv/bin/conan
  is_conan2 "$conan" || { echo "FAIL: $conan is not Conan 2" >&2; exit 1; }
  echo "installed $($conan --version) into $work/venv"
fi

export CONAN_HOME=$work/conan-home
mkdir -p "$CONAN_HOME"
# test_package is built in a copy under WORK_DIR so that the source tree stays clean.
rm -rf "$work/test_package"
cp -r "$src/test_package" "$work/test_package"
rm -rf "$work/test_package/build" "$work/test_package/CMakeUserPresets.json"

echo "+ CONAN_HOME=$CONAN_HOME $conan create $src -pr:a $src/conan/profiles/debian12 --build=missing --no-remote --test-folder $work/test_package"
"$conan" create "$src" -pr:a "$src/conan/profiles/debian12" --build=missing --no-remote \
  --test-folder "$work/test_package"
