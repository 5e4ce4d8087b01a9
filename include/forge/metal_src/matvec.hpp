#pragma once
// matvec_<type>: Y[t][r] = dot(W[r], X[t]) for weights of any type with kernels (weights.hpp). The grid is
// (row groups, tokens): decode is one token, batched prefill one grid row per token. Each of a
// threadgroup's 8 simdgroups computes MV_ROWS consecutive rows, lanes striding over columns (plain types)
// or 32-element chunks (quantized: a Q block or an eighth of a K-quant super-block, its scales decoded
// once per chunk), reduced with simd_sum. The input is read from device memory, where every simdgroup's
// reads of it hit the cache: no threadgroup copy, so a row may be of any length (an 8B model's FFN of
// 14336 floats is 56 KiB, over the 32 KiB of threadgroup memory); a quantized chunk's 32 inputs are read
// once into registers for all MV_ROWS rows.
//
// W may be up to three matrices of one type and width stacked (w0, w1, w2: Q, K and V, or gate and up,
// each bound where the file maps it): rows [0, split1) are w0's, [split1, split2) w1's, the rest w2's,
// and Y's rows follow on, so one launch computes a fused projection. A single matrix binds w0 three
// times with split1 = split2 = rows.
//
// Loads are 4 wide where the launcher found them aligned (p.quads: the leading groups of 4 columns so
// read, 0 when not): a plain type's 4 weights (float4, half4 or ushort4) and 4 inputs (float4) per load.
// GGUF rows are only as aligned as their byte length allows (a row of 7 f32 columns is 28 bytes), so the
// columns past 4 * quads, and every column when the rows or the input are misaligned, take 1-wide loads.
// CPU twin: cpu::matmul.
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/weights.hpp"

namespace forge::metal_src {

#define FORGE_MATVEC_FIELDS(F) \
    F(uint, rows) F(uint, split1) F(uint, split2) F(uint, cols) F(uint, row_bytes) F(uint, quads) F(uint, x_stride) F(uint, y_stride)
FORGE_MSL_PARAMS(MatvecParams, FORGE_MATVEC_FIELDS);

// Lane-partial dot products of rows r[0 .. MV_ROWS) with the input v.
template <DType T>
inline constexpr auto kMatvecAccumulate = concat<1536>(
    "inline void mv_accumulate_", dtype_suffix(T), R"msl((DPTR(const uchar) r[MV_ROWS], uint cols, uint quads,
    DPTR(const float) v, uint lane, thread float* acc) {
    DPTR(const float4) v4 = DCAST(const float4, v);
)msl",
    is_quantized(T) ? concat<640>(R"msl(    for (uint b = lane; b < cols / 32; b += 32) {
        float xb[32];
        if (quads != 0) {
            for (uint i = 0; i < 8; ++i) {
                const float4 x4 = v4[b * 8 + i];
                for (uint c = 0; c < 4; ++c) xb[4 * i + c] = x4[c];
            }
        } else {
            for (uint l = 0; l < 32; ++l) xb[l] = v[b * 32 + l];
        }
        for (uint k = 0; k < MV_ROWS; ++k) acc[k] += )msl", dtype_suffix(T), "_block_dot(r[k], b, xb);\n    }\n")
                    : concat<640>("    for (uint q = lane; q < quads; q += 32) {\n"
                                  "        const float4 x4 = v4[q];\n"
                                  "        for (uint k = 0; k < MV_ROWS; ++k) acc[k] += dot(w4_", dtype_suffix(T),
                                  "(r[k], q), x4);\n    }\n"
                                  "    for (uint j = 4 * quads + lane; j < cols; j += 32) {\n"
                                  "        const float x = v[j];\n"
                                  "        for (uint k = 0; k < MV_ROWS; ++k) acc[k] += w_", dtype_suffix(T),
                                  "(r[k], j) * x;\n    }\n"),
    "}\n\n");

template <DType T>
inline constexpr auto kMatvecName = concat<16>("matvec_", dtype_suffix(T));

// Rows past the end re-read the last row; their sums are discarded.
template <DType T>
inline constexpr auto kMatvecBody = concat<1024>(R"msl({
    DPTR(const float) xt = x + tgpig.y * p.x_stride;
    const uint row0 = (tgpig.x * (ntg.x / 32) + sg) * MV_ROWS;
    float acc[MV_ROWS];
    for (uint k = 0; k < MV_ROWS; ++k) acc[k] = 0.0f;
    if (row0 < p.rows) {
        DPTR(const uchar) r[MV_ROWS];
        for (uint k = 0; k < MV_ROWS; ++k) r[k] = stacked_row(w0, w1, w2, min(row0 + k, p.rows - 1), p.split1, p.split2, p.row_bytes);
        mv_accumulate_)msl", dtype_suffix(T), R"msl((r, p.cols, p.quads, xt, lane, acc);
    }
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
    .buffers = {{{"const uchar", "w0"}, {"const uchar", "w1"}, {"const uchar", "w2"}, {"const float", "x"}, {"float", "y"}}},
    .n_buffers = 5,
    .builtins = kTgpig | kNtg | kLane | kSg,
    .body = kMatvecBody<T>.view()};

}  // namespace forge::metal_src
