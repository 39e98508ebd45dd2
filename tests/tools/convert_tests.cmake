# Round trip of tools/convert_checkpoint.py (PyTorch state dict -> safetensors -> Python and spikelm's reader),
# label "tools". Registered only when SPIKELM_TORCH_PYTHON (default /usr/bin/python3: Debian's python3-torch)
# can import torch at configure time; torch is never needed by the library.
set(SPIKELM_TORCH_PYTHON "/usr/bin/python3" CACHE FILEPATH "A Python that can import torch (converter test)")
set(_spikelm_torch_rc 1)
if(EXISTS "${SPIKELM_TORCH_PYTHON}")
  execute_process(COMMAND "${SPIKELM_TORCH_PYTHON}" -c "import torch"
                  RESULT_VARIABLE _spikelm_torch_rc OUTPUT_QUIET ERROR_QUIET)
endif()
if(_spikelm_torch_rc EQUAL 0)
  add_test(NAME io/tools/convert_checkpoint
    COMMAND "${SPIKELM_TORCH_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/convert_roundtrip.py" "${PROJECT_SOURCE_DIR}"
            "${CMAKE_CURRENT_BINARY_DIR}/convert_checkpoint" $<TARGET_FILE:test_io>)
  set_tests_properties(io/tools/convert_checkpoint PROPERTIES LABELS tools TIMEOUT 300)
else()
  message(STATUS "spikelm: '${SPIKELM_TORCH_PYTHON}' cannot import torch; the convert_checkpoint test is not "
                 "registered")
endif()
