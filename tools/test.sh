#!/usr/bin/env bash
# The whole test suite, as CI runs it (after tools/install-deps.sh):
#   release  g++ Release with benchmarks built, every test
#   asan     clang++ with AddressSanitizer + UndefinedBehaviorSanitizer, every test but the header checks
#   fuzz     clang++ libFuzzer build, the fuzz tests
# Each build has its own folder under build/. Every stage runs even when an earlier one failed; the last
# line sums the CTest counts (a build that fails counts as one failed test), and the exit status is
# non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit

jobs=2
passed=0
failed=0
skipped=0
stages=()

# stage NAME "CTEST ARGS" SUBDIR CMAKE_ARGS...: configure build/NAME, build it (only the targets of its
# folder SUBDIR, with their dependencies, when SUBDIR is given), then run CTest in it.
stage() {
  local name=$1 ctest_args=$2 subdir=$3
  shift 3
  local dir=build/$name start=$SECONDS
  stages+=("$name")
  local build=(cmake --build "$dir" -j"$jobs")
  [ -z "$subdir" ] || build=(make -C "$dir/$subdir" -j"$jobs")  # a folder's own targets: Makefiles only
  mkdir -p "$dir"
  echo "== $name: configure and build (log: $dir/build.log)"
  if ! { cmake -S . -B "$dir" -G "Unix Makefiles" "$@" && "${build[@]}"; } >"$dir/build.log" 2>&1; then
    tail -n 60 "$dir/build.log"
    echo "== $name: build FAILED"
    failed=$((failed + 1))
    return
  fi
  echo "== $name: ctest $ctest_args"
  # shellcheck disable=SC2086  # ctest_args is a list of words
  (cd "$dir" && ctest --output-on-failure -j"$jobs" $ctest_args) | tee "$dir/ctest.log"
  local counts
  counts=$(sed -n 's/.* \([0-9][0-9]*\) tests* failed out of \([0-9][0-9]*\).*/\1 \2/p' "$dir/ctest.log" | tail -n 1)
  if [ -z "$counts" ]; then
    echo "== $name: CTest ran no tests"
    failed=$((failed + 1))
    return
  fi
  # CTest counts a skipped test as passed; it lists each one as "(Skipped)".
  local f=${counts% *} total=${counts#* } s
  s=$(grep -c '(Skipped)$' "$dir/ctest.log")
  passed=$((passed + total - f - s))
  failed=$((failed + f))
  skipped=$((skipped + s))
  echo "== $name: $((total - f - s)) passed, $f failed, $s skipped in $((SECONDS - start)) s"
}

# The consumer project (tests/downstream) is built against an installed forge here, with g++, and through
# add_subdirectory in the sanitizer stage, with clang: each way once, each build of it minutes long.
stage release "-E ^downstream\.subdirectory$" "" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DFORGE_BUILD_BENCH=ON
# The clang stages keep line tables only: all a sanitizer's or fuzzer's report needs (a file and line
# per frame, inlined frames too), for far less compile time than full debug info. -O1, as the sanitizers'
# and libFuzzer's documentation advise: compiling is most of these stages' time, and -O2 adds to it.
clang_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG")
# Header self-containment does not depend on the compiler's sanitizers: the release stage checks it.
# Whole models through the MSL emulator run one to two orders of magnitude slower under the sanitizers
# (its fiber scheduler is instrumented), and so does attention over a long context; here the emulator
# runs every kernel and its fault reports (test_metal_kernels), the release stage runs the emulated
# models (EmulatedMetal*, MetalGeneration*, *MetalEmulatorBackend*) and the long context. A consumer project is not
# sanitized: with clang it is built through add_subdirectory, with g++ (release) from the installed package.
# Only tests/ is built (its programs and what they run): the examples that no test of this build runs are
# compiled and run by the consumer project instead.
stage asan "-E ^compile_ok\.header\.|EmulatedMetal|MetalGeneration|MetalEmulatorBackend|LongContext|^downstream\.package$" tests "${clang_flags[@]}" \
  -DFORGE_SANITIZE=ON -DFORGE_BUILD_BENCH=OFF
# Only tests/fuzz/ (the fuzzers and their seed makers): the rest was built and tested by the stages above.
stage fuzz "-R fuzz --no-tests=error" tests/fuzz "${clang_flags[@]}" -DFORGE_BUILD_FUZZ=ON -DFORGE_BUILD_BENCH=OFF

# Each stage's failures again, last, where a log's tail shows them.
for name in "${stages[@]}"; do
  [ -f "build/$name/ctest.log" ] && sed -n "/The following tests FAILED:/,/^Errors while running/s/^/$name: /p" "build/$name/ctest.log"
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
