# Finds spikelm's dependencies; shared by the source tree and the installed package config.
#
# Debian 12 ships Eigen 3.4.0, whose version file rejects version ranges, and xsimd 8.1.0, whose exported
# target is called `xsimd` (no namespace) and leaks an INTERFACE link to `xtl`. Both are found without a
# version and checked by hand, and the xtl link is dropped when no xtl target can be found (spikelm never
# uses xtl, and xsimd 8 only needs it for its optional xtl::xcomplex support).

set(SPIKELM_MIN_EIGEN_VERSION 3.4.0)
set(SPIKELM_MIN_XSIMD_VERSION 8.1.0)
# nlohmann_json parses the safetensors headers and vocabularies in io/ (Debian 12: nlohmann-json3-dev 3.11.2).
set(SPIKELM_MIN_NLOHMANN_JSON_VERSION 3.11.0)

# _mode: "find_package" in the source tree, "find_dependency" in the installed config.
macro(spikelm_find_dependencies)
  if(COMMAND find_dependency AND DEFINED CMAKE_FIND_PACKAGE_NAME)
    set(_spikelm_find find_dependency)
  else()
    set(_spikelm_find find_package)
  endif()

  if(NOT TARGET Eigen3::Eigen)
    if(_spikelm_find STREQUAL "find_dependency")
      find_dependency(Eigen3 CONFIG)
    else()
      find_package(Eigen3 CONFIG REQUIRED)
    endif()
  endif()
  if(DEFINED Eigen3_VERSION AND Eigen3_VERSION VERSION_LESS SPIKELM_MIN_EIGEN_VERSION)
    message(FATAL_ERROR "spikelm needs Eigen >= ${SPIKELM_MIN_EIGEN_VERSION}, found ${Eigen3_VERSION} "
                        "in ${Eigen3_DIR}")
  endif()

  if(NOT TARGET xsimd)
    if(_spikelm_find STREQUAL "find_dependency")
      find_dependency(xsimd CONFIG)
    else()
      find_package(xsimd CONFIG REQUIRED)
    endif()
  endif()
  if(DEFINED xsimd_VERSION AND xsimd_VERSION VERSION_LESS SPIKELM_MIN_XSIMD_VERSION)
    message(FATAL_ERROR "spikelm needs xsimd >= ${SPIKELM_MIN_XSIMD_VERSION}, found ${xsimd_VERSION} "
                        "in ${xsimd_DIR}")
  endif()
  if(NOT TARGET nlohmann_json::nlohmann_json)
    if(_spikelm_find STREQUAL "find_dependency")
      find_dependency(nlohmann_json CONFIG)
    else()
      find_package(nlohmann_json CONFIG REQUIRED)
    endif()
  endif()
  if(DEFINED nlohmann_json_VERSION AND nlohmann_json_VERSION VERSION_LESS SPIKELM_MIN_NLOHMANN_JSON_VERSION)
    message(FATAL_ERROR "spikelm needs nlohmann_json >= ${SPIKELM_MIN_NLOHMANN_JSON_VERSION}, found "
                        "${nlohmann_json_VERSION} in ${nlohmann_json_DIR}")
  endif()

  if(TARGET xsimd)
    get_target_property(_spikelm_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
    if(_spikelm_xsimd_links AND "xtl" IN_LIST _spikelm_xsimd_links AND NOT TARGET xtl)
      find_package(xtl CONFIG QUIET)
      if(NOT TARGET xtl)
        list(REMOVE_ITEM _spikelm_xsimd_links xtl)
        set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_spikelm_xsimd_links}")
      endif()
    endif()
  endif()
endmacro()
