#pragma once
// The start of every forge MSL library: includes, the pointer macros, the model constants baked in from
// the traits, and the helpers several kernel families share (threadgroup reductions, weight element
// decoding). The pointer macros are the one seam between Metal and forge's emulator: Metal gets plain
// address-space pointers; the emulator predefines them as bounds-checked pointers.
#include <algorithm>
#include <string_view>

#include "forge/metal_src/constexpr_string.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge::metal_src {

inline constexpr int kSimdWidth = 32;
inline constexpr int kThreadgroupMemoryLimit = 32 * 1024;  // bytes, every Apple GPU family

// Everything about a model the kernels are specialised on, derived from its shape.
struct KernelConfig {
    int head_dim = 0;
    bool rope_neox = false;
    float rope_base = 0;
    float rms_eps = 0;
    DType weights = DType::F32;  // layer matrices: selects whether the simdgroup-matrix GEMM is built
    bool qkv_bias = false;

    // Launch geometry shared by the kernels and their launchers.
    static constexpr int kMatvecThreads = 256;      // 8 simdgroups
    static constexpr int kMatvecRowsPerSimdgroup = 4;
    static constexpr int kMatvecRowsPerGroup = kMatvecRowsPerSimdgroup * kMatvecThreads / kSimdWidth;
    static constexpr int kGemmTile = 16;            // tokens x rows per threadgroup, 4 simdgroups of 8x8
    static constexpr int kGemmThreads = 128;
    static constexpr int kFlashThreads = 128;
    static constexpr int kFlashTile = 32;           // keys scored per step of the online softmax
    static constexpr int kReduceScratch = 32;       // floats for one cross-simdgroup reduction

    constexpr int flash_dims_per_thread() const { return (head_dim + kFlashThreads - 1) / kFlashThreads; }
    constexpr bool has_gemm() const { return weights == DType::Q8_0 || weights == DType::Q4_0; }
};

constexpr KernelConfig kernel_config(const ModelShape& s) {
    return {.head_dim = s.head_dim,
            .rope_neox = s.rope_style == RopeStyle::neox,
            .rope_base = s.rope_base,
            .rms_eps = s.rms_eps,
            .weights = s.weights,
            .qkv_bias = s.qkv_bias};
}

inline constexpr std::string_view kPreludeHead = R"msl(// forge MSL library: generated at compile time from the model's traits. Do not edit.
#include <metal_stdlib>
#include <metal_simdgroup_matrix>
using namespace metal;

#ifndef DPTR
#define DPTR(T) device T*
#define TPTR(T) threadgroup T*
#define DCAST(T, p) ((device T*)(p))
#define TCAST(T, p) ((threadgroup T*)(p))
#endif

)msl";

// Model constants, baked from the traits.
constexpr FixedString<1024> constants_text(const KernelConfig& c) {
    return concat<1024>(
        "constant constexpr uint HEAD_DIM = ", format_int(c.head_dim), ";\n",
        "constant constexpr bool ROPE_NEOX = ", std::string_view(c.rope_neox ? "true" : "false"), ";\n",
        "constant constexpr float ROPE_BASE = ", format_float(c.rope_base), ";\n",
        "constant constexpr float RMS_EPS = ", format_float(c.rms_eps), ";\n",
        "constant constexpr uint MV_ROWS = ", format_int(KernelConfig::kMatvecRowsPerSimdgroup), ";\n",
        "constant constexpr uint GEMM_TILE = ", format_int(KernelConfig::kGemmTile), ";\n",
        "constant constexpr uint FA_THREADS = ", format_int(KernelConfig::kFlashThreads), ";\n",
        "constant constexpr uint FA_TILE = ", format_int(KernelConfig::kFlashTile), ";\n",
        "constant constexpr uint FA_DPT = ", format_int(c.flash_dims_per_thread()), ";\n\n");
}

// Helpers shared by several kernel families.
inline constexpr std::string_view kPreludeHelpers = R"msl(// Sum / max of one value per thread over the threadgroup, returned to every thread. `scratch` holds
// one float per simdgroup; the trailing barrier lets the caller reuse it at once.
inline float tg_reduce_sum(float v, TPTR(float) scratch, uint lane, uint sg, uint nthreads) {
    v = simd_sum(v);
    if (lane == 0) scratch[sg] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float total = 0.0f;
    for (uint i = 0; i < nthreads / 32; ++i) total += scratch[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return total;
}

inline float tg_reduce_max(float v, TPTR(float) scratch, uint lane, uint sg, uint nthreads) {
    v = simd_max(v);
    if (lane == 0) scratch[sg] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float m = -INFINITY;
    for (uint i = 0; i < nthreads / 32; ++i) m = max(m, scratch[i]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return m;
}

// Element i of a weight row, decoded to float exactly as forge's CPU dequantizers do.
inline float w_f32(DPTR(const uchar) row, uint i) { return DCAST(const float, row)[i]; }
inline float w_f16(DPTR(const uchar) row, uint i) { return float(DCAST(const half, row)[i]); }
inline float w_q8_0(DPTR(const uchar) row, uint i) {
    DPTR(const uchar) blk = row + (i / 32) * 34;
    return float(DCAST(const int8_t, blk + 2)[i % 32]) * float(DCAST(const half, blk)[0]);
}
inline float w_q4_0(DPTR(const uchar) row, uint i) {
    DPTR(const uchar) blk = row + (i / 32) * 18;
    const uint j = i % 32;
    const uint b = blk[2 + j % 16];
    const int q = int(j < 16 ? (b & 15u) : (b >> 4)) - 8;
    return float(q) * float(DCAST(const half, blk)[0]);
}

)msl";

// The weight-type suffix the kernels' names and helpers use.
constexpr std::string_view dtype_suffix(DType t) {
    switch (t) {
        case DType::F32: return "f32";
        case DType::F16: return "f16";
        case DType::Q8_0: return "q8_0";
        case DType::Q4_0: return "q4_0";
        default: return "";
    }
}

inline constexpr DType kKernelDTypes[] = {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0};

}  // namespace forge::metal_src
