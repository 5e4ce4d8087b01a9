# forge_add_cpu_kernel_sets(TARGET <interface target> SOURCE <forge's include dir> [OPTIONS <target>]):
# on x86-64 Linux with GCC or Clang, compiles include/forge/cpu/dispatch/kernel_set.cpp once per
# instruction set with that set's flags (portable: none; avx2; avx512-vnni; avx512-amx where the
# compiler has AMX), and links each into one
# object that exports only its entry, every other symbol made local and its COMDAT groups dissolved:
# an inline function or a std:: template compiled there for AVX-512 can then never be the copy the rest
# of the program calls on a CPU without it. The objects are linked into whatever links <target>, whose
# models then choose the best set the CPU runs when they load (forge/cpu/dispatch/select.hpp).
# Sets FORGE_CPU_KERNEL_SET_AMX_FLAGS, the avx512-amx set's flags, where that set is compiled.
# OPTIONS names an INTERFACE target whose options the objects also take (warnings, sanitizers).
function(forge_add_cpu_kernel_sets)
  cmake_parse_arguments(arg "" "TARGET;SOURCE;OPTIONS" "" ${ARGN})
  if(NOT (CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND CMAKE_SYSTEM_NAME STREQUAL "Linux"
          AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_OBJCOPY AND CMAKE_LINKER))
    return()  # the program's own target flags decide its kernels
  endif()
  set(sets portable avx2 avx512)
  set(name_portable "portable")
  set(name_avx2 "avx2")
  set(name_avx512 "avx512-vnni")
  set(name_amx "avx512-amx")
  set(flags_portable "")
  set(flags_avx2 -mavx2 -mfma -mf16c)
  set(flags_avx512 -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni)
  set(flags_amx ${flags_avx512} -mamx-tile -mamx-int8)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag("-mamx-tile -mamx-int8" FORGE_COMPILER_HAS_AMX)
  if(FORGE_COMPILER_HAS_AMX)
    list(APPEND sets amx)
    set(FORGE_CPU_KERNEL_SET_AMX_FLAGS ${flags_amx} PARENT_SCOPE)
  endif()
  set(objects)
  foreach(set IN LISTS sets)
    set(lib forge_kernel_set_${set}_compile)
    add_library(${lib} OBJECT ${arg_SOURCE}/forge/cpu/dispatch/kernel_set.cpp)
    target_include_directories(${lib} PRIVATE ${arg_SOURCE})
    target_compile_features(${lib} PRIVATE cxx_std_20)
    target_compile_options(${lib} PRIVATE ${flags_${set}} -fvisibility=hidden -fvisibility-inlines-hidden
                           $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)  # GCC's unique symbols would stay global
    target_compile_definitions(${lib} PRIVATE FORGE_KERNEL_SET_ENTRY=forge_cpu_kernel_set_${set}
                               FORGE_KERNEL_SET_NAME="${name_${set}}")
    if(arg_OPTIONS)
      target_link_libraries(${lib} PRIVATE ${arg_OPTIONS})
    endif()
    set(object ${CMAKE_CURRENT_BINARY_DIR}/forge_kernel_set_${set}${CMAKE_CXX_OUTPUT_EXTENSION})
    add_custom_command(OUTPUT ${object}
      COMMAND ${CMAKE_LINKER} -r -o ${object}.whole $<TARGET_OBJECTS:${lib}>
      COMMAND ${CMAKE_OBJCOPY} --keep-global-symbol=forge_cpu_kernel_set_${set} --remove-section=.group ${object}.whole ${object}
      DEPENDS ${lib} $<TARGET_OBJECTS:${lib}>
      COMMENT "Linking the ${name_${set}} kernel set into one object with one global symbol"
      COMMAND_EXPAND_LISTS VERBATIM)
    list(APPEND objects ${object})
  endforeach()
  add_custom_target(forge_cpu_kernel_set_objects DEPENDS ${objects})
  add_library(forge_cpu_kernel_sets INTERFACE)
  target_link_libraries(forge_cpu_kernel_sets INTERFACE ${objects})
  target_compile_definitions(forge_cpu_kernel_sets INTERFACE FORGE_CPU_KERNEL_SETS_LINKED=1)
  add_dependencies(forge_cpu_kernel_sets forge_cpu_kernel_set_objects)
  target_link_libraries(${arg_TARGET} INTERFACE $<BUILD_INTERFACE:forge_cpu_kernel_sets>)
  set(FORGE_CPU_KERNEL_SET_OBJECTS ${objects} PARENT_SCOPE)
endfunction()
