# libFuzzer targets for io/ (label "fuzz"): the safetensors reader and the tokenizers, built with clang++
# -fsanitize=fuzzer,address,undefined and run for SPIKELM_FUZZ_SECONDS each from the seed corpora under
# tests/fuzz/corpus/ (new inputs go to the build tree). They are registered only when a clang++ that can link
# libFuzzer is found (Debian: clang + libclang-rt-14-dev), whatever compiler builds the rest.
option(SPIKELM_FUZZ_TESTS "Build and run the io fuzzers (needs clang++ with libFuzzer)"
       ${PROJECT_IS_TOP_LEVEL})
set(SPIKELM_FUZZ_SECONDS 20 CACHE STRING "How long ctest runs each fuzzer (-max_total_time)")
if(NOT SPIKELM_FUZZ_TESTS OR SPIKELM_SANITIZE)
  return()
endif()

find_program(SPIKELM_FUZZ_CXX NAMES clang++-14 clang++)
mark_as_advanced(SPIKELM_FUZZ_CXX)
set(_spikelm_fuzz_ok FALSE)
if(SPIKELM_FUZZ_CXX)
  # The equivalent of check_cxx_source_compiles, with clang++ rather than the project's compiler.
  set(_dir "${CMAKE_CURRENT_BINARY_DIR}/fuzz/check")
  file(MAKE_DIRECTORY "${_dir}")
  file(WRITE "${_dir}/check.cpp"
       "#include <cstddef>\n#include <cstdint>\n"
       "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
  execute_process(
    COMMAND "${SPIKELM_FUZZ_CXX}" -std=c++20 -fsanitize=fuzzer,address,undefined "${_dir}/check.cpp"
            -o "${_dir}/check"
    RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_VARIABLE _err)
  if(_rc EQUAL 0)
    set(_spikelm_fuzz_ok TRUE)
  else()
    message(STATUS "spikelm: ${SPIKELM_FUZZ_CXX} cannot link libFuzzer (Debian: libclang-rt-14-dev); "
                   "the fuzz tests are not registered")
  endif()
else()
  message(STATUS "spikelm: no clang++ found; the fuzz tests are not registered")
endif()
if(NOT _spikelm_fuzz_ok)
  return()
endif()

# Dependency include directories (the fuzzers include only io/ headers, but take them all for safety).
set(_spikelm_fuzz_includes "-I${PROJECT_SOURCE_DIR}/include")
foreach(_tgt Eigen3::Eigen xsimd nlohmann_json::nlohmann_json)
  get_target_property(_dirs ${_tgt} INTERFACE_INCLUDE_DIRECTORIES)
  foreach(_d IN LISTS _dirs)
    if(_d AND NOT _d STREQUAL "/usr/include")
      list(APPEND _spikelm_fuzz_includes "-isystem" "${_d}")
    endif()
  endforeach()
endforeach()
file(GLOB_RECURSE _spikelm_io_headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/include/spikelm/*.hpp")

set(_spikelm_fuzzers)
foreach(_name safetensors tokenizer)
  if(_name STREQUAL "tokenizer")
    set(_max_len 1024) # WordPiece is quadratic in the word length: shorter inputs give more runs
  else()
    set(_max_len 4096)
  endif()
  set(_bin "${CMAKE_CURRENT_BINARY_DIR}/fuzz/${_name}_fuzz")
  add_custom_command(OUTPUT "${_bin}"
    COMMAND "${SPIKELM_FUZZ_CXX}" -std=c++20 -O1 -g -fno-omit-frame-pointer
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -Wall -Wextra -Wpedantic -Werror ${_spikelm_fuzz_includes}
            "${CMAKE_CURRENT_LIST_DIR}/${_name}_fuzz.cpp" -o "${_bin}"
    DEPENDS "${CMAKE_CURRENT_LIST_DIR}/${_name}_fuzz.cpp" ${_spikelm_io_headers}
    COMMENT "Building the ${_name} fuzzer with ${SPIKELM_FUZZ_CXX} (libFuzzer, ASan, UBSan)"
    VERBATIM)
  list(APPEND _spikelm_fuzzers "${_bin}")
  set(_work "${CMAKE_CURRENT_BINARY_DIR}/fuzz/${_name}-corpus")
  set(_dict)
  if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/${_name}.dict")
    set(_dict "-dict=${CMAKE_CURRENT_LIST_DIR}/${_name}.dict")
  endif()
  add_test(NAME io/fuzz/${_name}
    COMMAND "${CMAKE_COMMAND}" -E env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
            "${_bin}" -max_total_time=${SPIKELM_FUZZ_SECONDS} -max_len=${_max_len} -rss_limit_mb=2048 -timeout=10
            -print_final_stats=1 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz/${_name}- ${_dict}
            "${_work}" "${CMAKE_CURRENT_LIST_DIR}/corpus/${_name}")
  set_tests_properties(io/fuzz/${_name} PROPERTIES LABELS fuzz TIMEOUT 600)
  file(MAKE_DIRECTORY "${_work}")
endforeach()
add_custom_target(spikelm_fuzzers ALL DEPENDS ${_spikelm_fuzzers})
