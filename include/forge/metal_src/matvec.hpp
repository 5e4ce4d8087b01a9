#pragma once
// matvec_<type>: Y[t][r] = dot(W[r], X[t]) for weights of any type with kernels (weights.hpp). The grid is
// (row groups, tokens): decode is one token, batched prefill one grid row per token. Each of a
// threadgroup's 8 simdgroups computes MV_ROWS consecutive rows, lanes striding over columns (plain types)
// or 32-element chunks (quantized: a Q block or an eighth of a K-quant super-block, its scales decoded
// once per chunk), reduced with simd_sum. The input is read from device memory, where every simdgroup's
// reads of it hit the cache: no threadgroup copy, so a row may be of any length (an 8B model's FFN of
// 14336 floats is 56 KiB, over the 32 KiB of threadgroup memory); a quantized chunk's 32 inputs are read
// once into registers for all MV_ROWS rows. CPU twin: cpu::matmul.
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/weights.hpp"

namespace forge::metal_src {

#define FORGE_MATVEC_FIELDS(F) F(uint, rows) F(uint, cols) F(uint, row_bytes) F(uint, x_stride) F(uint, y_stride)
FORGE_MSL_PARAMS(MatvecParams, FORGE_MATVEC_FIELDS);

// Lane-partial dot products of MV_ROWS rows starting at row0 (rows past the end re-read the last row;
// their sums are discarded).
template <DType T>
inline constexpr auto kMatvecAccumulate = concat<1024>(
    "inline void mv_accumulate_", dtype_suffix(T), R"msl((DPTR(const uchar) w, uint row0, uint rows, uint cols,
    uint row_bytes, DPTR(const float) v, uint lane, thread float* acc) {
    DPTR(const uchar) r[MV_ROWS];
    for (uint k = 0; k < MV_ROWS; ++k) r[k] = w + min(row0 + k, rows - 1) * row_bytes;
)msl",
    is_quantized(T) ? concat<384>(R"msl(    for (uint b = lane; b < cols / 32; b += 32) {
        float xb[32];
        for (uint l = 0; l < 32; ++l) xb[l] = v[b * 32 + l];
        for (uint k = 0; k < MV_ROWS; ++k) acc[k] += )msl", dtype_suffix(T), "_block_dot(r[k], b, xb);\n    }\n")
                    : concat<384>("    for (uint j = lane; j < cols; j += 32) {\n"
                                  "        const float x = v[j];\n"
                                  "        for (uint k = 0; k < MV_ROWS; ++k) acc[k] += w_", dtype_suffix(T),
                                  "(r[k], j) * x;\n    }\n"),
    "}\n\n");

template <DType T>
inline constexpr auto kMatvecName = concat<16>("matvec_", dtype_suffix(T));

template <DType T>
inline constexpr auto kMatvecBody = concat<1024>(R"msl({
    DPTR(const float) xt = x + tgpig.y * p.x_stride;
    const uint row0 = (tgpig.x * (ntg.x / 32) + sg) * MV_ROWS;
    float acc[MV_ROWS];
    for (uint k = 0; k < MV_ROWS; ++k) acc[k] = 0.0f;
    if (row0 < p.rows) mv_accumulate_)msl", dtype_suffix(T), R"msl((w, row0, p.rows, p.cols, p.row_bytes, xt, lane, acc);
    for (uint k = 0; k < MV_ROWS; ++k) {
        const float s = simd_sum(acc[k]);
        if (lane == 0 && row0 + k < p.rows) y[tgpig.y * p.y_stride + row0 + k] = s;
    }
}
)msl");

template <DType T>
inline constexpr KernelSource kMatvec{
    .name = kMatvecName<T>.view(),
    .params = MatvecParams::msl_name,
    .buffers = {{{"const uchar", "w"}, {"const float", "x"}, {"float", "y"}}},
    .n_buffers = 3,
    .builtins = kTgpig | kNtg | kLane | kSg,
    .body = kMatvecBody<T>.view()};

}  // namespace forge::metal_src
