# cmake -DCXX=... -DINCLUDE_DIR=... -DSOURCE=... [-DEXPECT=text] -P check_compile.cmake
# Compiles SOURCE (syntax only, warnings as errors). Without EXPECT it passes only if that succeeds. With
# EXPECT it passes only if compilation fails on exactly one forge traits rule and that rule's message
# contains EXPECT: a failure for any other reason (a typo, a missing include) does not count.
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only -Wall -Wextra -Werror "-I${INCLUDE_DIR}" "${SOURCE}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if("${EXPECT}" STREQUAL "")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} must compile, but the compiler said:\n${out}")
  endif()
  return()
endif()

if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must fail with the traits rule \"${EXPECT}\"")
endif()
# The rule messages all start in lower case; the macro's own source text, which compilers echo, has
# `"forge traits: " msg` instead.
string(REGEX MATCHALL "forge traits: [a-z][^\n]*" fired "${out}")
list(LENGTH fired n_fired)
if(NOT n_fired EQUAL 1)
  message(FATAL_ERROR "${SOURCE} must break exactly one traits rule, but ${n_fired} fired:\n${out}")
endif()
string(FIND "${fired}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SOURCE} broke the wrong rule: expected \"${EXPECT}\", got\n  ${fired}")
endif()
