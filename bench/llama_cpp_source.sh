# Sourced by the comparison scripts, so that the llama.cpp they compare against is named once: the npm
# package node-llama-cpp ships the llama.cpp source it was built from as a git bundle (version 3.22.1
# carries llama.cpp de3ff81), which is built here with -march=native.
#
#   llama_cpp_build LLAMA_DIR TARGET...
#
# The source goes to LLAMA_DIR/src, the binaries to LLAMA_DIR/build/bin; targets already built are kept.
llama_cpp_package=node-llama-cpp@3.22.1

llama_cpp_build() {
    local dir=$1 target missing=()
    shift
    for target in "$@"; do [[ -x $dir/build/bin/$target ]] || missing+=("$target"); done
    ((${#missing[@]})) || return 0
    if [[ ! -d $dir/src/.git ]]; then
        npm install --prefix "$dir/npm" --no-audit --no-fund --ignore-scripts "$llama_cpp_package" >/dev/null
        rm -rf "$dir/src"
        git -c advice.detachedHead=false clone -q "$dir/npm/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$dir/src"
    fi
    # The server's targets exist only with LLAMA_BUILD_SERVER; the others build alike either way.
    cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
    cmake --build "$dir/build" --target "${missing[@]}" -j"$(nproc)" >/dev/null
}
