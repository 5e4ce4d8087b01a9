#pragma once
// embed_<type>: out[t] = row tokens[t] of the embedding table decoded to f32, for every weight type.
// One thread per output element. CPU twin: dequantize_row (as Model::forward uses it).
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"

namespace forge::metal_src {

#define FORGE_EMBED_FIELDS(F) F(uint, n_tokens) F(uint, cols) F(uint, row_bytes) F(uint, out_stride)
FORGE_MSL_PARAMS(EmbedParams, FORGE_EMBED_FIELDS);

template <DType T>
inline constexpr auto kEmbedName = concat<16>("embed_", dtype_suffix(T));

template <DType T>
inline constexpr auto kEmbedBody = concat<512>(R"msl({
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
