# Packaging tests (label "packaging"). Each test is driven by a script in this directory and works in its own
# scratch directory under ${CMAKE_BINARY_DIR}/packaging:
#
#   packaging/install              installs this source tree into packaging/prefix (fixture setup)
#   packaging/find_package         consumer project: find_package(spikelm CONFIG REQUIRED) from that prefix
#   packaging/wrong_major_version  consumer project: find_package(spikelm 99 ...) must fail with CMake's
#                                  "compatible with requested version" error
#   packaging/add_subdirectory     consumer project: add_subdirectory(<spikelm source>)
#   packaging/conan_create         `conan create` with conan/profiles/debian12 (offline, Debian packages)
#
# The sub-builds use the same C++ compiler as this build, and Ninja when it is available.

set(SPIKELM_PACKAGING_DIR "${CMAKE_BINARY_DIR}/packaging")
set(_spikelm_pkg_scripts "${CMAKE_CURRENT_LIST_DIR}")
set(_spikelm_pkg_prefix "${SPIKELM_PACKAGING_DIR}/prefix")

find_program(SPIKELM_NINJA_PROGRAM NAMES ninja ninja-build)
mark_as_advanced(SPIKELM_NINJA_PROGRAM)
if(SPIKELM_NINJA_PROGRAM)
  set(_spikelm_pkg_generator "Ninja")
else()
  set(_spikelm_pkg_generator "Unix Makefiles")
endif()
if(CMAKE_BUILD_TYPE)
  set(_spikelm_pkg_build_type "${CMAKE_BUILD_TYPE}")
else()
  set(_spikelm_pkg_build_type "Release")
endif()

# Settings shared by every CMake sub-build, passed to the scripts through the environment.
set(_spikelm_pkg_env
  "SPIKELM_PKG_CMAKE=${CMAKE_COMMAND}"
  "SPIKELM_PKG_GENERATOR=${_spikelm_pkg_generator}"
  "SPIKELM_PKG_CXX=${CMAKE_CXX_COMPILER}"
  "SPIKELM_PKG_BUILD_TYPE=${_spikelm_pkg_build_type}"
  "SPIKELM_PKG_VERSION=${PROJECT_VERSION}")

add_test(NAME packaging/install
  COMMAND bash "${_spikelm_pkg_scripts}/install.sh" "${PROJECT_SOURCE_DIR}"
          "${SPIKELM_PACKAGING_DIR}/install-build" "${_spikelm_pkg_prefix}")
set_tests_properties(packaging/install PROPERTIES
  FIXTURES_SETUP spikelm_installed_prefix)

add_test(NAME packaging/find_package
  COMMAND bash "${_spikelm_pkg_scripts}/consumer.sh" find_package "${PROJECT_SOURCE_DIR}"
          "${SPIKELM_PACKAGING_DIR}/consumer-find_package" "${_spikelm_pkg_prefix}")
set_tests_properties(packaging/find_package PROPERTIES
  FIXTURES_REQUIRED spikelm_installed_prefix)

add_test(NAME packaging/wrong_major_version
  COMMAND bash "${_spikelm_pkg_scripts}/consumer.sh" wrong_major_version "${PROJECT_SOURCE_DIR}"
          "${SPIKELM_PACKAGING_DIR}/consumer-wrong_major_version" "${_spikelm_pkg_prefix}")
set_tests_properties(packaging/wrong_major_version PROPERTIES
  FIXTURES_REQUIRED spikelm_installed_prefix)

add_test(NAME packaging/add_subdirectory
  COMMAND bash "${_spikelm_pkg_scripts}/consumer.sh" add_subdirectory "${PROJECT_SOURCE_DIR}"
          "${SPIKELM_PACKAGING_DIR}/consumer-add_subdirectory")

add_test(NAME packaging/conan_create
  COMMAND bash "${_spikelm_pkg_scripts}/conan_create.sh" "${PROJECT_SOURCE_DIR}"
          "${SPIKELM_PACKAGING_DIR}/conan")

set(_spikelm_pkg_tests packaging/install packaging/find_package packaging/wrong_major_version
    packaging/add_subdirectory)
set_tests_properties(${_spikelm_pkg_tests} PROPERTIES
  LABELS packaging TIMEOUT 600 ENVIRONMENT "${_spikelm_pkg_env}")
set_tests_properties(packaging/conan_create PROPERTIES
  LABELS packaging TIMEOUT 900 SKIP_RETURN_CODE 77 ENVIRONMENT "${_spikelm_pkg_env}")
