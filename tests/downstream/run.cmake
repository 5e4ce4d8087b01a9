# cmake -DFORGE_CONSUME=package|subdirectory -DFORGE_SOURCE_DIR=... -DFORGE_BUILD_DIR=... -DWORK_DIR=...
#       -DCXX=... -DGENERATOR=... -P run.cmake
# Builds the downstream project in this folder against forge, from scratch in WORK_DIR, and runs it on
# the bundled model. Release, as users build it: some warnings only show with inlining. 'package' first
# installs forge from FORGE_BUILD_DIR into WORK_DIR/prefix, so the project sees only what an installed
# forge offers.
file(REMOVE_RECURSE "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
  message("${out}")
endfunction()

set(configure "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}" -DCMAKE_BUILD_TYPE=Release "-DFORGE_CONSUME=${FORGE_CONSUME}")
if(FORGE_CONSUME STREQUAL "package")
  run("${CMAKE_COMMAND}" --install "${FORGE_BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  # Only the prefix: nothing of the source or build tree is visible to find_package.
  run(${configure} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
else()
  run(${configure} "-DFORGE_SOURCE_DIR=${FORGE_SOURCE_DIR}")
endif()
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/downstream" "${FORGE_SOURCE_DIR}/models/stories260K.gguf")
