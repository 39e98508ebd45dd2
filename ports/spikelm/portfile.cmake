# vcpkg overlay port for spikelm (header-only).
#
# Source: this port builds the spikelm checkout it lives in (SOURCE_PATH = the repository root, two levels
# above this file), so it is meant to be used as an overlay port from a checkout:
#   vcpkg install spikelm --overlay-ports=<spikelm checkout>/ports
# or, in manifest mode, with "overlay-ports": ["<spikelm checkout>/ports"] in vcpkg-configuration.json.
# A port published to a registry would fetch a tagged release instead, e.g.
#   vcpkg_from_git(OUT_SOURCE_PATH SOURCE_PATH URL <repository URL> REF <commit of the v${VERSION} tag>)
# and the line below would go.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/spikelm/spikelm.hpp")
  message(FATAL_ERROR "spikelm overlay port: no spikelm sources in ${SOURCE_PATH}; use the port from a "
                      "spikelm checkout (--overlay-ports=<checkout>/ports)")
endif()

# Header-only: nothing differs between debug and release.
set(VCPKG_BUILD_TYPE release)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    openmp SPIKELM_USE_OPENMP)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DSPIKELM_BUILD_TESTS=OFF
    -DSPIKELM_BUILD_EXAMPLES=OFF
    -DSPIKELM_BUILD_BENCHMARKS=OFF
    -DSPIKELM_INSTALL=ON
    ${FEATURE_OPTIONS})
vcpkg_cmake_install()
# spikelm installs its package files in share/cmake/spikelm; vcpkg wants them in share/spikelm.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/spikelm)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
