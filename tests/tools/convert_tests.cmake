# Tests that need PyTorch, label "tools": the round trip of tools/convert_checkpoint.py (PyTorch state dict ->
# safetensors -> Python and spikelm's reader) and, with the examples, the conformance of the spikegpt program
# (logits, firing rates, greedy generation, eval) with the PyTorch reference tests/reference/spike_gpt.py, and
# tools/import_hf_bert.py with `spiking_bert hidden` / `teacher --init` against tests/reference/bert.py.
# Registered only when SPIKELM_TORCH_PYTHON (default /usr/bin/python3: Debian's python3-torch) can import torch
# at configure time; torch is never needed by the library.
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
  if(SPIKELM_BUILD_EXAMPLES)
    add_test(NAME spike_gpt/tools/spikegpt_logits
      COMMAND "${SPIKELM_TORCH_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/spikegpt_logits.py" "${PROJECT_SOURCE_DIR}"
              "${CMAKE_CURRENT_BINARY_DIR}/spikegpt_logits" $<TARGET_FILE:spikegpt>)
    set_tests_properties(spike_gpt/tools/spikegpt_logits PROPERTIES LABELS tools TIMEOUT 300)
    add_test(NAME spiking_bert/tools/import_hf_bert
      COMMAND "${SPIKELM_TORCH_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/hf_bert_import.py" "${PROJECT_SOURCE_DIR}"
              "${CMAKE_CURRENT_BINARY_DIR}/import_hf_bert" $<TARGET_FILE:spiking_bert>)
    set_tests_properties(spiking_bert/tools/import_hf_bert PROPERTIES LABELS tools TIMEOUT 300)
  endif()
else()
  message(STATUS "spikelm: '${SPIKELM_TORCH_PYTHON}' cannot import torch; the convert_checkpoint, "
                 "spikegpt_logits and import_hf_bert tests are not registered")
endif()
