#!/usr/bin/env bash
# Rebuilds tests/data/chat-templates/NAME.convN.txt (or .convN.error) for every NAME.jinja there: the
# renders of llama.cpp's own Jinja engine that tests/jinja_test.cpp compares forge's against. llama.cpp's
# source comes as bench/compare_llama_cpp.sh fetches it (node-llama-cpp 3.22.1 ships llama.cpp de3ff81 as
# a git bundle), unless LLAMA_SRC names a source tree already there.
#
#   tools/chat_template_references/make_references.sh WORK_DIR
#
# BOS and EOS for each template come from tokens.txt there ("<s>" and "</s>" for templates it does not
# list). A date a template takes from the clock is the day of the run: the tests mask dates.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../../tests/data/chat-templates" && pwd)
work=$(mkdir -p "${1:?usage: $0 WORK_DIR}" && cd "$1" && pwd)

src=${LLAMA_SRC:-$work/llama.cpp/src}
if [[ ! -f $src/common/chat.h ]]; then
    npm install --prefix "$work/llama.cpp/npm" --no-audit --no-fund --ignore-scripts node-llama-cpp@3.22.1 >/dev/null
    rm -rf "$src"
    git clone -q "$work/llama.cpp/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src"
fi
cmake -S "$here" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_SRC="$src" >/dev/null
cmake --build "$work/build" --target render_references -j"$(nproc)" >/dev/null

for template in "$data"/*.jinja; do
    name=$(basename "$template" .jinja)
    read -r bos eos < <(awk -v n="$name" '$1 == n { print $2, $3 }' "$data/tokens.txt") || true  # not listed: the defaults below
    rm -f "$data/$name".conv[123].txt "$data/$name".conv[123].error
    "$work/build/render_references" "$template" "${bos:-<s>}" "${eos:-</s>}" "$data/$name"
done
