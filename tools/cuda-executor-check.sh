#!/usr/bin/env bash
# forge's Metal kernels on an NVIDIA GPU: builds the kernel and model tests, runs their CUDA cases, then
# runs them under compute-sanitizer's racecheck, synccheck and memcheck, then measures the kernels'
# throughput (bench/metal_cuda_throughput.cpp). For a machine with an NVIDIA
# driver, nvcc and compute-sanitizer (CI has none; there these cases are skipped). Results recorded in
# docs/metal-on-cuda.md came from this script on the project's H200.
#   tools/cuda-executor-check.sh TESTDATA_DIR [GOOGLETEST_SOURCE_DIR]
# TESTDATA_DIR holds models/ and reference/ as ../shared/testdata does (a subset is fine: the model cases
# whose files are missing fail by name). GOOGLETEST_SOURCE_DIR (e.g. a copy of Debian's /usr/src/googletest)
# is built and installed first when the machine has no GoogleTest.
set -u
cd "$(dirname "$0")/.." || exit
testdata=$(realpath "$1")
gtest_src=${2:-}
build=${BUILD:-/tmp/forge-cuda}
export PATH=$PATH:/usr/local/cuda/bin FORGE_CUDA_CACHE=$build/cuda-cache
start=$SECONDS
nvidia-smi -L; nvcc --version | tail -1; compute-sanitizer --version | head -1
if [ -n "$gtest_src" ] && [ ! -f /usr/include/gtest/gtest.h ] && [ ! -f /usr/local/include/gtest/gtest.h ]; then
  { cmake -S "$gtest_src" -B "$build/gtest" -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF &&
    cmake --build "$build/gtest" -j"$(nproc)" && cmake --install "$build/gtest" --prefix /usr/local; } >"$build.gtest.log" 2>&1 ||
    { tail -30 "$build.gtest.log"; exit 1; }
fi
{ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFORGE_TESTDATA_DIR="$testdata" -DFORGE_BUILD_BENCH=OFF -DFORGE_INSTALL=OFF &&
  cmake --build "$build" -j"$(nproc)" --target test_metal_kernels test_metal_model; } >"$build.log" 2>&1 ||
  { grep -E "error" "$build.log" | head -40; exit 1; }
echo "== built in $((SECONDS - start)) s"
kernels="$build/tests/test_metal_kernels" models="$build/tests/test_metal_model"
"$kernels" --gtest_filter='*cuda*:CudaExecutor.*' | grep -vE '^\[ +RUN '
"$models" --gtest_filter='*CudaMetalLogits*:*MetalGeneration*cuda*' | grep -E '^\[|vs cpu|Failure'
for tool in racecheck synccheck memcheck; do
  echo "== compute-sanitizer --tool $tool"
  compute-sanitizer --tool "$tool" "$kernels" --gtest_filter='Executors/*cuda*' | grep -E 'PASSED|FAILED|SUMMARY'
  compute-sanitizer --tool "$tool" "$models" --gtest_filter="${SANITIZED_MODELS:-*CudaMetalLogits*stories*:*CudaMetalLogits*qwen3_Q4*}" |
    grep -E 'PASSED|FAILED|SUMMARY'
done
echo "== throughput (bench/metal_cuda_throughput.cpp)"
g++ -std=c++20 -O2 -Iinclude bench/metal_cuda_throughput.cpp -o "$build/metal_cuda_throughput" -ldl -pthread &&
  "$build/metal_cuda_throughput"
echo "== done in $((SECONDS - start)) s"
