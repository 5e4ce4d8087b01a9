#pragma once
// embed_<type>: out[t] = row tokens[t] of the embedding table decoded to f32, for every weight type. One
// thread per output element of a plain type, per four of a quantized one (one decode of their chunk's
// scales). CPU twin: dequantize_row (as Model::forward uses it), bit for bit.
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/weights.hpp"

namespace forge::metal_src {

#define FORGE_EMBED_FIELDS(F) F(uint, n_tokens) F(uint, cols) F(uint, row_bytes) F(uint, out_stride)
FORGE_MSL_PARAMS(EmbedParams, FORGE_EMBED_FIELDS);

// Output elements one thread of embed_<type> writes.
constexpr int embed_elements_per_thread(DType t) { return is_quantized(t) ? 4 : 1; }

template <DType T>
inline constexpr auto kEmbedName = concat<16>("embed_", dtype_suffix(T));

template <DType T>
inline constexpr auto kEmbedBody = is_quantized(T) ? concat<640>(R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    const uint quads = p.cols / 4;
    if (gid >= p.n_tokens * quads) return;
    const uint t = gid / quads;
    const uint i = gid % quads;
    const float4 v = w4_)msl", dtype_suffix(T), R"msl((table + uint(tokens[t]) * p.row_bytes, i / 8, i % 8);
    for (uint c = 0; c < 4; ++c) out[t * p.out_stride + 4 * i + c] = v[c];
}
)msl")
                                                     : concat<640>(R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n_tokens * p.cols) return;
    const uint t = gid / p.cols;
    const uint i = gid % p.cols;
    out[t * p.out_stride + i] = w_)msl", dtype_suffix(T), R"msl((table + uint(tokens[t]) * p.row_bytes, i);
}
)msl");

template <DType T>
inline constexpr KernelSource kEmbed{
    .name = kEmbedName<T>.view(),
    .params = EmbedParams::msl_name,
    .buffers = {{{"const uchar", "table"}, {"const int", "tokens"}, {"float", "out"}}},
    .n_buffers = 3,
    .builtins = kTgpig | kNtg | kTid,
    .body = kEmbedBody<T>.view()};

}  // namespace forge::metal_src
