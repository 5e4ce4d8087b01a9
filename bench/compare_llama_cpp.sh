#!/usr/bin/env bash
# forge bench and llama.cpp's llama-bench on the same synthetic GGUFs, same flags, one model after the
# other so both see the same machine. llama.cpp comes from the npm registry (bench/llama_cpp_source.sh).
#
#   bench/compare_llama_cpp.sh BUILD_DIR [THREADS] [REPS] [MODELS]
#
# THREADS is a count or a comma-separated list of counts (1,2,4,8,16): each model is measured at each,
# both engines in turn; forge rows name the kernel set where KERNEL_SETS lists several. MODELS, a
# regular expression, picks the models to compare (all by default).
# BUILD_DIR is a Release build of forge with forge_cli and write_models built; the synthetic models go to
# BUILD_DIR/bench/models (where bench_model writes them), written on first use. The 8B shape (a 4.5 GB
# file) runs only when MODELS names it. Configure with -DFORGE_BUILD_ZOO=ON so that forge bench runs
# these shapes with their compiled traits, as forge run would; without the zoo it runs them on the
# runtime-shape path; a line after each model's first forge rows says which path and kernels ran.
# llama.cpp is fetched and built once under BUILD_DIR/llama.cpp.
set -euo pipefail

source "$(cd "$(dirname "$0")" && pwd)/llama_cpp_source.sh"

build=$(cd "${1:?usage: $0 BUILD_DIR [THREADS] [REPS] [MODELS]}" && pwd)
threads=${2:-2}
reps=${3:-3}
only=${4:-.}
# KERNEL_SETS (environment): forge's CPU kernel sets to measure, each in turn (avx512-amx,avx512-vnni);
# by default the one forge chooses. FORGE_LOADS: where forge's weights live, each in turn: mmap (mapped
# from the page cache, the default) and no-mmap (read into the process's memory, forge bench --no-mmap).
kernel_sets=${KERNEL_SETS:-best}
loads=${FORGE_LOADS:-mmap}
models=$build/bench/models
llama=$build/llama.cpp

llama_cpp_build "$llama" llama-bench llama-quantize

# The K-quant files people download, made from the Q8_0 files by llama.cpp's own quantizer (rows that are
# not whole 256-value blocks fall back to other types, as in the published files).
for base in TinyLlama-1.1B-Chat Qwen2.5-0.5B; do
    [[ $base-Q4_K_M =~ $only || $base-Q6_K =~ $only ]] || continue
    "$build/bench/write_models" "$models" "^$base-Q8_0\$" >/dev/null
    for kq in Q4_K_M Q6_K; do
        [[ -f $models/$base-$kq.gguf ]] || "$llama/build/bin/llama-quantize" --allow-requantize "$models/$base-Q8_0.gguf" \
            "$models/$base-$kq.gguf" "$kq" >/dev/null 2>&1
    done
done

# test rows only: "engine | threads | test | t/s"
rows() { grep -E '^\| [A-Za-z]' | grep -v '^| model' | awk -F'|' -v e="$1" -v t="$2" '{gsub(/ +/, " "); print e " | " t " |" $7 "|" $8}'; }

uptime
for spec in SmolLM2-135M-Q8_0:128 SmolLM2-135M-Q4_0:128 Qwen2.5-0.5B-Q8_0:512 TinyLlama-1.1B-Chat-Q4_0:128,512 \
            TinyLlama-1.1B-Chat-Q8_0:128 TinyLlama-1.1B-Chat-Q4_K_M:128 TinyLlama-1.1B-Chat-Q6_K:128 Qwen2.5-0.5B-Q4_K_M:128 \
            Qwen2.5-0.5B-Q6_K:128 Llama-3.1-8B-Q4_0:128; do
    name=${spec%%:*}
    prompts=${spec#*:}
    [[ $name =~ $only ]] || continue
    [[ $name == Llama-3.1-8B* && $only == . ]] && continue
    [[ $name == *_K* ]] || "$build/bench/write_models" "$models" "^$name\$" >/dev/null
    echo "== $name"
    said=
    for t in ${threads//,/ }; do
        "$llama/build/bin/llama-bench" -m "$models/$name.gguf" -t "$t" -p "$prompts" -n 64 -r "$reps" 2>/dev/null | rows llama.cpp "$t"
        for k in ${kernel_sets//,/ }; do
            for load in ${loads//,/ }; do
                label=forge
                [[ $k == best ]] || label+=" $k"
                flags=()
                [[ $load == mmap ]] || { label+=" --$load"; flags=(--"$load"); }
                for p in ${prompts//,/ }; do
                    out=$(FORGE_CPU_KERNELS=${k#best} "$build/forge" bench -m "$models/$name.gguf" -t "$t" -p "$p" -n 64 -r "$reps" "${flags[@]}" 2>/dev/null)
                    rows "$label" "$t" <<< "$out"
                    [[ $said == *"|$label|"* ]] || { sed -n "s/^peak RSS .*); /$label: /p" <<< "$out"; said+="|$label|"; }
                done
            done
        done
    done
done
uptime
