# cmake -DFORGE_CONSUME=package|subdirectory -DFORGE_SOURCE_DIR=... -DFORGE_BUILD_DIR=... -DWORK_DIR=...
#       -DCXX=... -DGENERATOR=... -P run.cmake
# Builds the downstream project in this folder against forge, from scratch in WORK_DIR, and runs its
# programs (its own and forge's examples) on the bundled model, checking what each prints. Release, as
# users build it: some warnings only show with inlining. 'package' first installs forge from
# FORGE_BUILD_DIR into WORK_DIR/prefix, so the project sees only what an installed forge offers.
file(REMOVE_RECURSE "${WORK_DIR}")
set(model "${FORGE_SOURCE_DIR}/models/stories260K.gguf")
set(bin "${WORK_DIR}/build")

# Runs a command that must succeed; its stdout and stderr land in `out_var` and `err_var` when given.
function(run)
  cmake_parse_arguments(arg "" "OUT;ERR;INPUT" "COMMAND" ${ARGN})
  set(input)
  if(arg_INPUT)
    set(input INPUT_FILE "${arg_INPUT}")
  endif()
  execute_process(COMMAND ${arg_COMMAND} ${input} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REPLACE ";" " " cmd "${arg_COMMAND}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  message("$ ${cmd}\n${out}${err}")
  if(arg_OUT)
    set(${arg_OUT} "${out}" PARENT_SCOPE)
  endif()
  if(arg_ERR)
    set(${arg_ERR} "${err}" PARENT_SCOPE)
  endif()
endfunction()

set(configure "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${bin}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}" -DCMAKE_BUILD_TYPE=Release "-DFORGE_CONSUME=${FORGE_CONSUME}"
    "-DFORGE_SOURCE_DIR=${FORGE_SOURCE_DIR}")
if(FORGE_CONSUME STREQUAL "package")
  run(COMMAND "${CMAKE_COMMAND}" --install "${FORGE_BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  # Only the prefix: nothing of forge's build tree is visible to find_package.
  run(COMMAND ${configure} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
else()
  run(COMMAND ${configure})
endif()
run(COMMAND "${CMAKE_COMMAND}" --build "${bin}")

run(COMMAND "${bin}/downstream" "${model}" OUT said)
# Built without -march, from forge's source tree it still runs the widest kernels this x86-64 Linux CPU
# has (cmake/cpu_kernel_sets.cmake); an installed forge is headers only, and the build's flags decide.
set(cpuinfo "")
if(EXISTS /proc/cpuinfo)
  file(READ /proc/cpuinfo cpuinfo)
endif()
if(FORGE_CONSUME STREQUAL "subdirectory" AND CMAKE_HOST_SYSTEM_PROCESSOR STREQUAL "x86_64" AND cpuinfo MATCHES " avx2 ")
  if(said MATCHES "kernels portable")
    message(FATAL_ERROR "downstream: built without -march on a CPU with AVX2, it ran the portable kernels:\n${said}")
  endif()
endif()

# simple: some reply (a sampled story; stories260K has no chat template, so the prompt is ChatML text).
run(COMMAND "${bin}/simple" "${model}" "Tell me a story." OUT reply)
string(STRIP "${reply}" reply)
if(reply STREQUAL "")
  message(FATAL_ERROR "simple printed no reply")
endif()

# chat: the second turn reuses the first turn's KV cache.
file(WRITE "${WORK_DIR}/turns.txt" "Tell me a story.\nTell me another one.\n")
run(COMMAND "${bin}/chat" "${model}" INPUT "${WORK_DIR}/turns.txt" ERR stats)
string(REGEX MATCHALL "\\[prompt: [0-9]+ tokens, [0-9]+ fed, [0-9]+ reused\\]" turns "${stats}")
list(LENGTH turns n)
if(NOT (n EQUAL 2))
  message(FATAL_ERROR "chat: expected a line of prompt statistics per turn for 2 turns, got ${n}")
endif()
list(GET turns 1 second)
string(REGEX REPLACE ".* ([0-9]+) reused.*" "\\1" reused "${second}")
if(NOT (reused GREATER 0))
  message(FATAL_ERROR "chat: the second turn reused no tokens of the first (${second})")
endif()

# custom_sampling: the hand-written greedy loop gives what `forge run --temp 0` gives for the prompt.
set(greedy "Once upon a time, there was a little girl named Lily.")
run(COMMAND "${bin}/custom_sampling" "${model}" "Once upon a time" OUT text)
string(FIND "${text}" "${greedy}" at)
if(NOT (at EQUAL 0))
  message(FATAL_ERROR "custom_sampling: greedy output does not begin with '${greedy}'")
endif()
# A -inf bias on ' Lily' makes the greedy choice the next name.
run(COMMAND "${bin}/custom_sampling" "${model}" "Once upon a time" --ban Lily OUT text)
string(FIND "${text}" "Lily" at)
if(NOT (at EQUAL -1))
  message(FATAL_ERROR "custom_sampling --ban Lily: the output still has 'Lily'")
endif()
string(FIND "${text}" "there was a little girl named " at)
if(NOT (at GREATER 0))
  message(FATAL_ERROR "custom_sampling --ban Lily: the story should only change at the name")
endif()
# Log-probabilities: the greedy tokens, each the most likely of its alternatives.
run(COMMAND "${bin}/custom_sampling" "${model}" "Once upon a time" --logprobs OUT table)
string(REGEX MATCH "' Lily' +(-[0-9.]+)  p=[0-9.]+ \\| ' Lily' (-[0-9.]+)" lily "${table}")
if(lily STREQUAL "")
  message(FATAL_ERROR "custom_sampling --logprobs: no line for ' Lily' that lists it as its own most likely alternative")
endif()
if(NOT (CMAKE_MATCH_1 STREQUAL CMAKE_MATCH_2))
  message(FATAL_ERROR "custom_sampling --logprobs: ' Lily' has two log-probabilities (${lily})")
endif()
