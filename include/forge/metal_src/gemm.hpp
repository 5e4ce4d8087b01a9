#pragma once
// gemm_<type>: Y[t][r] = dot(W[r], X[t]) for a batch of tokens with simdgroup matrices, used by prefill
// on quantized weights of every type (weights.hpp). A threadgroup owns a GEMM_TILE x GEMM_TILE (32 x 32,
// tokens x rows) output tile and its 4 simdgroups a 16 x 16 quadrant each, held as a 2 x 2 grid of 8 x 8
// float accumulators: per 8-wide step of k a simdgroup loads two input and two (transposed) weight
// fragments and runs four simdgroup_multiply_accumulate, each load used twice. Per 32-column step (one
// chunk of every row) the 128 threads decode the weight tile, four elements per thread from one decode of
// their chunk's scales, and load the input tile, both into threadgroup memory as half, as llama.cpp's
// Metal GEMM does: half tiles halve the memory and a half x half product is exact in float. The sums stay
// float: half accumulators would lose too much over a dot product 14336 long (an 8B model's down
// projection).
// Quadrants wholly inside Y are stored straight from the accumulators; partial tiles (rows or tokens not
// a multiple of GEMM_TILE) are zero-padded on load and their quadrants staged through threadgroup memory
// (the tiles' own, free after the last step's barrier) to be stored masked. W may be up to three matrices
// stacked, as the mat-vec's (matvec.hpp): a fused projection.
// CPU twin: cpu::matmul over dequantize_row, both operands rounded to half.
#include <algorithm>

#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/matvec.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/weights.hpp"

namespace forge::metal_src {

#define FORGE_GEMM_FIELDS(F) \
    F(uint, rows) F(uint, split1) F(uint, split2) F(uint, cols) F(uint, row_bytes) F(uint, n_tokens) F(uint, x_stride) F(uint, y_stride)
FORGE_MSL_PARAMS(GemmParams, FORGE_GEMM_FIELDS);

// The quadrant layout (4 simdgroups of 16 x 16) is written for this tile and thread count.
static_assert(KernelConfig::kGemmTile == 32 && KernelConfig::kGemmThreads == 4 * kSimdWidth);

// Threadgroup floats: the two half tiles (weights and inputs, GEMM_TILE x 32 halves each), and after the
// last step, in the same memory, the float output tile that partial quadrants are staged through.
inline constexpr int kGemmThreadgroupFloats =
    std::max(KernelConfig::kGemmTile * 32, KernelConfig::kGemmTile * KernelConfig::kGemmTile);

template <DType T>
inline constexpr auto kGemmName = concat<16>("gemm_", dtype_suffix(T));

template <DType T>
inline constexpr auto kGemmBody = concat<4096>(R"msl({
    const uint row_base = tgpig.x * GEMM_TILE;
    const uint tok_base = tgpig.y * GEMM_TILE;
    TPTR(half) w_tile = TCAST(half, tgm);
    TPTR(half) x_tile = w_tile + GEMM_TILE * 32;
    const uint sg_tok = (sg / 2) * 16;
    const uint sg_row = (sg % 2) * 16;
    // c<i><j>: tokens sg_tok + 8i .., rows sg_row + 8j ..
    simdgroup_float8x8 c00 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_float8x8 c01 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_float8x8 c10 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_float8x8 c11 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint k0 = 0; k0 < p.cols; k0 += 32) {
        for (uint i = tid; i < GEMM_TILE * 8; i += ntg.x) {
            const uint r = i / 8, q = i % 8;
            const float4 v = row_base + r < p.rows
                                 ? w4_)msl", dtype_suffix(T), R"msl((stacked_row(w0, w1, w2, row_base + r, p.split1, p.split2, p.row_bytes), k0 / 32, q)
                                 : float4(0.0f);
            for (uint c = 0; c < 4; ++c) w_tile[r * 32 + 4 * q + c] = half(v[c]);
        }
        for (uint i = tid; i < GEMM_TILE * 32; i += ntg.x) {
            const uint r = i / 32, k = i % 32;
            x_tile[i] = tok_base + r < p.n_tokens ? half(x[(tok_base + r) * p.x_stride + k0 + k]) : half(0.0f);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint ks = 0; ks < 32; ks += 8) {
            simdgroup_half8x8 a0;
            simdgroup_half8x8 a1;
            simdgroup_half8x8 b0;
            simdgroup_half8x8 b1;
            simdgroup_load(a0, x_tile + sg_tok * 32 + ks, 32);
            simdgroup_load(a1, x_tile + (sg_tok + 8) * 32 + ks, 32);
            simdgroup_load(b0, w_tile + sg_row * 32 + ks, 32, ulong2(0, 0), true);
            simdgroup_load(b1, w_tile + (sg_row + 8) * 32 + ks, 32, ulong2(0, 0), true);
            simdgroup_multiply_accumulate(c00, a0, b0, c00);
            simdgroup_multiply_accumulate(c01, a0, b1, c01);
            simdgroup_multiply_accumulate(c10, a1, b0, c10);
            simdgroup_multiply_accumulate(c11, a1, b1, c11);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    const uint tok0 = tok_base + sg_tok;
    const uint row0 = row_base + sg_row;
    if (tok0 + 16 <= p.n_tokens && row0 + 16 <= p.rows) {
        DPTR(float) out = y + tok0 * p.y_stride + row0;
        simdgroup_store(c00, out, p.y_stride);
        simdgroup_store(c01, out + 8, p.y_stride);
        simdgroup_store(c10, out + 8 * p.y_stride, p.y_stride);
        simdgroup_store(c11, out + 8 * p.y_stride + 8, p.y_stride);
        return;
    }
    TPTR(float) out_tile = tgm + sg * 256;
    simdgroup_store(c00, out_tile, 16);
    simdgroup_store(c01, out_tile + 8, 16);
    simdgroup_store(c10, out_tile + 8 * 16, 16);
    simdgroup_store(c11, out_tile + 8 * 16 + 8, 16);
    simdgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = lane; i < 256; i += 32) {
        const uint tok = tok0 + i / 16;
        const uint row = row0 + i % 16;
        if (tok < p.n_tokens && row < p.rows) y[tok * p.y_stride + row] = out_tile[i];
    }
}
)msl");

template <DType T>
inline constexpr KernelSource kGemm{
    .name = kGemmName<T>.view(),
    .params = GemmParams::msl_name,
    .buffers = {{{"const uchar", "w0"}, {"const uchar", "w1"}, {"const uchar", "w2"}, {"const float", "x"}, {"float", "y"}}},
    .n_buffers = 5,
    .threadgroup_memory = true,
    .builtins = kTgpig | kNtg | kTid | kLane | kSg,
    .body = kGemmBody<T>.view()};

}  // namespace forge::metal_src
