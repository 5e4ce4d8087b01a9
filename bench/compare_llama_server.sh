#!/usr/bin/env bash
# forge serve and llama.cpp's llama-server under the same load (bench/serve_load), one server at a time on
# the same machine with the same flags: aggregate decode tok/s and time to first token at 1, 2, 4, 8 and 16
# concurrent streams, then a two-turn conversation whose second turn should find the first in the cache.
#
#   bench/compare_llama_server.sh BUILD_DIR [THREADS] [MODELS]
#
# MODELS: bench model names (default "SmolLM2-135M-Q8_0 TinyLlama-1.1B-Chat-Q4_0") or GGUF paths.
# BUILD_DIR is a Release build of forge with forge_cli, serve_load, with_vocab and write_models built (the
# bench models are written to BUILD_DIR/bench/models on first use). The synthetic models' placeholder vocabulary maps no
# text, so each is served with a copy that carries the Llama SentencePiece vocabulary of the test data
# (padded to the model's vocabulary size: same tensors, same speed). llama.cpp is fetched and built once
# under BUILD_DIR/llama.cpp. Both servers get -t THREADS: one pool of that many kernel threads shared by
# every slot. Environment: PORT (default 18473); for a short check,
# CONCURRENCY (default "1 2 4 8 16") and STREAMS_ARGS, more serve_load streams options (e.g. "--max-tokens 8").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/llama_cpp_source.sh"

build=$(cd "${1:?usage: $0 BUILD_DIR [THREADS] [MODELS]}" && pwd)
threads=${2:-2}
names=${3:-SmolLM2-135M-Q8_0 TinyLlama-1.1B-Chat-Q4_0}
port=${PORT:-18473}
concurrency=${CONCURRENCY:-1 2 4 8 16}
read -ra streams_args <<<"${STREAMS_ARGS:-}"
llama=$build/llama.cpp
testdata=$(sed -n 's/^FORGE_TESTDATA_DIR:PATH=//p' "$build/CMakeCache.txt")
vocab=$testdata/tokenizer/ggml-vocab-llama-spm.gguf
served=$build/bench/models/served
logs=$build/bench/serve-logs
mkdir -p "$served" "$logs"
[[ -f $vocab ]] || { echo "no vocabulary at $vocab (FORGE_TESTDATA_DIR in $build/CMakeCache.txt)" >&2; exit 1; }

llama_cpp_build "$llama" llama-server

server=
stop_server() {
    if [[ -n $server ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=
    fi
}
trap stop_server EXIT

# start_server LOG COMMAND...: runs the server in the background and waits until /health answers 200.
start_server() {
    local log=$1
    shift
    if curl -s "http://127.0.0.1:$port/health" >/dev/null; then
        echo "something already answers on port $port: set PORT" >&2
        exit 1
    fi
    "$@" >"$log" 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
        if ! kill -0 "$server" 2>/dev/null; then
            echo "the server exited before it was ready: $*" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        sleep 0.5
    done
}

load() { "$build/bench/serve_load" "$@" --port "$port"; }
# One table per model: the first run's header (header=1), the other runs' rows.
rows() { if ((header)); then cat; else sed 1,2d; fi; }

uptime
for name in $names; do
    if [[ -f $name ]]; then
        model=$name
        name=$(basename "$name" .gguf)
    else
        model=$build/bench/models/$name.gguf
        "$build/bench/write_models" "$build/bench/models" "^$name\$" >/dev/null
    fi
    file=$served/$name.gguf
    [[ -f $file && $file -nt $model ]] || "$build/bench/with_vocab" "$model" "$vocab" "$file" >/dev/null
    echo "== $name (threads $threads)"
    header=1
    for n in $concurrency; do
        # llama-server divides -c among its slots; forge's -c is each slot's.
        start_server "$logs/llama-server-$name-$n.log" "$llama/build/bin/llama-server" -m "$file" -t "$threads" -np "$n" \
            -c $((n * 1024)) --port "$port"
        load streams --streams "$n" "${streams_args[@]}" --label llama.cpp | rows
        header=0
        stop_server
        start_server "$logs/forge-$name-$n.log" "$build/forge" serve -m "$file" -t "$threads" --parallel "$n" -c 1024 --port "$port"
        load streams --streams "$n" "${streams_args[@]}" --label forge | rows
        stop_server
    done
    # The conversation's second turn is about 1070 tokens: one slot of 2048 on both.
    echo
    header=1
    start_server "$logs/llama-server-$name-conversation.log" "$llama/build/bin/llama-server" -m "$file" -t "$threads" -np 1 \
        -c 2048 --port "$port"
    load conversation --label llama.cpp | rows
    header=0
    stop_server
    start_server "$logs/forge-$name-conversation.log" "$build/forge" serve -m "$file" -t "$threads" --parallel 1 -c 2048 --port "$port"
    load conversation --label forge | rows
    stop_server
    echo
done
uptime
