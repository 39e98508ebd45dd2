# One generated translation unit per public header, compiled with -Wall -Wextra -Wpedantic -Werror (each
# registered as a ctest test, label "headers"). Each TU includes its header twice to check the include guard.
# Internal headers (detail/, *_impl.hpp) are skipped: they refuse direct inclusion.
file(GLOB_RECURSE _spikelm_headers RELATIVE "${PROJECT_SOURCE_DIR}/include"
     "${PROJECT_SOURCE_DIR}/include/spikelm/*.hpp")
list(FILTER _spikelm_headers EXCLUDE REGEX "/detail/|_impl\\.hpp$")

set(_spikelm_header_compilers)
foreach(_cxx g++-12 g++ clang++-14 clang++)
  find_program(_spikelm_cxx_${_cxx} NAMES ${_cxx})
endforeach()
if(_spikelm_cxx_g++-12)
  list(APPEND _spikelm_header_compilers "gcc=${_spikelm_cxx_g++-12}")
elseif(_spikelm_cxx_g++)
  list(APPEND _spikelm_header_compilers "gcc=${_spikelm_cxx_g++}")
endif()
if(_spikelm_cxx_clang++-14)
  list(APPEND _spikelm_header_compilers "clang=${_spikelm_cxx_clang++-14}")
elseif(_spikelm_cxx_clang++)
  list(APPEND _spikelm_header_compilers "clang=${_spikelm_cxx_clang++}")
endif()

# Dependency include directories, passed as -isystem (their warnings are not ours). The compiler's own
# directories (/usr/include: where Debian's xsimd lives) are left out: naming them with -isystem reorders
# the search path and breaks libstdc++'s #include_next under clang.
set(_spikelm_dep_flags)
foreach(_tgt Eigen3::Eigen xsimd nlohmann_json::nlohmann_json)
  get_target_property(_dirs ${_tgt} INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_d IN LISTS _dirs)
    if(NOT _d IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES AND NOT _d STREQUAL "/usr/include")
      list(APPEND _spikelm_dep_flags "-isystem" "${_d}")
    endif()
  endforeach()
endforeach()
set(_spikelm_omp_flag)
if(SPIKELM_USE_OPENMP)
  set(_spikelm_omp_flag -fopenmp)
endif()

# g++ compiles every header on its own (self-contained, include guard, no warnings); clang++ compiles the
# umbrella header, which includes every public header, and the whole unit-test suite in the ASan+UBSan job
# (tests/sanitize.sh), both with -Werror. -DSPIKELM_HEADER_TESTS_CLANG_EACH=ON adds one clang++ test per header.
option(SPIKELM_HEADER_TESTS_CLANG_EACH "Also compile every public header on its own with clang++" OFF)
foreach(_h IN LISTS _spikelm_headers)
  string(REPLACE "/" "_" _id "${_h}")
  string(REPLACE ".hpp" ".cpp" _id "${_id}")
  set(_tu "${CMAKE_CURRENT_BINARY_DIR}/header_tus/${_id}")
  file(CONFIGURE OUTPUT "${_tu}" CONTENT "#include <${_h}>\n#include <${_h}>\n" @ONLY)
  foreach(_entry IN LISTS _spikelm_header_compilers)
    string(REPLACE "=" ";" _pair "${_entry}")
    list(GET _pair 0 _name)
    list(GET _pair 1 _path)
    if(_name STREQUAL "clang" AND NOT SPIKELM_HEADER_TESTS_CLANG_EACH AND NOT _h STREQUAL "spikelm/spikelm.hpp")
      continue()
    endif()
    add_test(NAME header/${_name}/${_h}
      COMMAND ${_path} -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror ${_spikelm_omp_flag}
              -I${PROJECT_SOURCE_DIR}/include ${_spikelm_dep_flags} ${_tu})
    set_tests_properties(header/${_name}/${_h} PROPERTIES LABELS headers)
  endforeach()
endforeach()
list(LENGTH _spikelm_header_compilers _n)
if(_n LESS 2)
  message(WARNING "spikelm: header tests need both g++ and clang++; found: ${_spikelm_header_compilers}")
endif()
