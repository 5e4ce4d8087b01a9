#pragma once
// gemm_<type>: Y[t][r] = dot(W[r], X[t]) for a batch of tokens with simdgroup matrices, used by prefill
// on quantized weights of every type (weights.hpp). A threadgroup owns a GEMM_TILE x GEMM_TILE (tokens x
// rows) output tile; per 32-column step (one chunk of every row) its 128 threads decode the weight tile,
// four elements per thread from one decode of their chunk's scales, and load the input tile into
// threadgroup memory, then each of the 4 simdgroups accumulates one 8x8 sub-tile with simdgroup_multiply_accumulate.
// Partial tiles (rows or tokens not a multiple of GEMM_TILE) are zero-padded on load and masked on
// store. W may be up to three matrices stacked, as the mat-vec's (matvec.hpp): a fused projection.
// CPU twin: cpu::matmul.
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/matvec.hpp"
#include "forge/metal_src/prelude.hpp"
#include "forge/metal_src/weights.hpp"

namespace forge::metal_src {

#define FORGE_GEMM_FIELDS(F) \
    F(uint, rows) F(uint, split1) F(uint, split2) F(uint, cols) F(uint, row_bytes) F(uint, n_tokens) F(uint, x_stride) F(uint, y_stride)
FORGE_MSL_PARAMS(GemmParams, FORGE_GEMM_FIELDS);

// Threadgroup floats: weight tile, input tile, and one 8x8 staging tile per simdgroup.
inline constexpr int kGemmThreadgroupFloats = 2 * KernelConfig::kGemmTile * 32 + 4 * 64;

template <DType T>
inline constexpr auto kGemmName = concat<16>("gemm_", dtype_suffix(T));

template <DType T>
inline constexpr auto kGemmBody = concat<2048>(R"msl({
    const uint row_base = tgpig.x * GEMM_TILE;
    const uint tok_base = tgpig.y * GEMM_TILE;
    TPTR(float) w_tile = tgm;
    TPTR(float) x_tile = tgm + GEMM_TILE * 32;
    TPTR(float) out_tile = tgm + 2 * GEMM_TILE * 32 + sg * 64;
    const uint sg_tok = (sg / 2) * 8;
    const uint sg_row = (sg % 2) * 8;
    simdgroup_float8x8 c = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint k0 = 0; k0 < p.cols; k0 += 32) {
        for (uint i = tid; i < GEMM_TILE * 8; i += ntg.x) {
            const uint r = i / 8, q = i % 8;
            const float4 v = row_base + r < p.rows
                                 ? w4_)msl", dtype_suffix(T), R"msl((stacked_row(w0, w1, w2, row_base + r, p.split1, p.split2, p.row_bytes), k0 / 32, q)
                                 : float4(0.0f);
            for (uint c = 0; c < 4; ++c) w_tile[r * 32 + 4 * q + c] = v[c];
        }
        for (uint i = tid; i < GEMM_TILE * 32; i += ntg.x) {
            const uint r = i / 32, k = i % 32;
            x_tile[i] = tok_base + r < p.n_tokens ? x[(tok_base + r) * p.x_stride + k0 + k] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint ks = 0; ks < 32; ks += 8) {
            simdgroup_float8x8 a;
            simdgroup_float8x8 b;
            simdgroup_load(a, x_tile + sg_tok * 32 + ks, 32);
            simdgroup_load(b, w_tile + sg_row * 32 + ks, 32, ulong2(0, 0), true);
            simdgroup_multiply_accumulate(c, a, b, c);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    simdgroup_store(c, out_tile, 8);
    simdgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = lane; i < 64; i += 32) {
        const uint tok = tok_base + sg_tok + i / 8;
        const uint row = row_base + sg_row + i % 8;
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
