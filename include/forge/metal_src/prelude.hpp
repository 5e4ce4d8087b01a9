#pragma once
// The start of every forge MSL library: includes, the pointer macros, the model constants baked in from
// the traits, and the helpers several kernel families share (threadgroup reductions; the weight decoders
// are weights.hpp's). The pointer macros are the one seam between Metal and forge's emulator: Metal gets
// plain address-space pointers; the emulator predefines them as bounds-checked pointers.
#include <algorithm>
#include <string_view>

#include "forge/metal_src/constexpr_string.hpp"
#include "forge/metal_src/weights.hpp"
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
    float attention_scale = 0;  // q·k's factor; 0: 1/sqrt(HEAD_DIM)
    std::uint32_t weight_types = 0;  // dtype_bit of every weight type the library holds kernels for
    bool qkv_bias = false;

    // Launch geometry shared by the kernels and their launchers.
    static constexpr int kMatvecThreads = 256;      // 8 simdgroups
    static constexpr int kMatvecRowsPerSimdgroup = 4;
    static constexpr int kMatvecRowsPerGroup = kMatvecRowsPerSimdgroup * kMatvecThreads / kSimdWidth;
    static constexpr int kGemmTile = 32;            // tokens x rows per threadgroup, 4 simdgroups of 16x16
    static constexpr int kGemmThreads = 128;
    static constexpr int kFlashThreads = 128;
    static constexpr int kFlashTile = 32;           // keys scored per step of the online softmax
    static constexpr int kReduceScratch = 32;       // floats for one cross-simdgroup reduction

    constexpr int flash_dims_per_thread() const { return (head_dim + kFlashThreads - 1) / kFlashThreads; }
    constexpr bool holds(DType t) const { return (weight_types & dtype_bit(t)) != 0; }
    // Quantized weights get the simdgroup-matrix GEMM for prefill; plain ones take the mat-vec.
    constexpr bool has_gemm(DType t) const { return is_quantized(t) && holds(t); }
    constexpr bool has_any_gemm() const {
        for (const DType t : kKernelDTypes)
            if (has_gemm(t)) return true;
        return false;
    }
};

// The weight types a library holds kernels for when only the shape is known (compiled traits): the
// shape's layer type, and the plain and 8/4-bit types embeddings and LM heads commonly come in.
constexpr std::uint32_t shape_weight_types(const ModelShape& s) {
    return dtype_bit(s.weights) | dtype_bit(DType::F32) | dtype_bit(DType::F16) | dtype_bit(DType::Q8_0) |
           dtype_bit(DType::Q4_0);
}

// `weight_types`: the types of the file's matrices, where the file is known.
constexpr KernelConfig kernel_config(const ModelShape& s, std::uint32_t weight_types) {
    return {.head_dim = s.head_dim,
            .rope_neox = s.rope_style == RopeStyle::neox,
            .rope_base = s.rope_base,
            .rms_eps = s.rms_eps,
            .attention_scale = s.attention_scale,
            .weight_types = weight_types,
            .qkv_bias = s.qkv_bias};
}
constexpr KernelConfig kernel_config(const ModelShape& s) { return kernel_config(s, shape_weight_types(s)); }

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

// Model constants, baked from the traits. GEMM_TILE only where a GEMM kernel uses it (a library of plain
// weight types has none).
constexpr FixedString<1024> constants_text(const KernelConfig& c) {
    const auto gemm_tile = concat<64>("constant constexpr uint GEMM_TILE = ", format_int(KernelConfig::kGemmTile), ";\n");
    return concat<1024>(
        "constant constexpr uint HEAD_DIM = ", format_int(c.head_dim), ";\n",
        "constant constexpr bool ROPE_NEOX = ", std::string_view(c.rope_neox ? "true" : "false"), ";\n",
        "constant constexpr float ROPE_BASE = ", format_float(c.rope_base), ";\n",
        "constant constexpr float RMS_EPS = ", format_float(c.rms_eps), ";\n",
        "constant constexpr float KQ_SCALE = ", format_float(c.attention_scale), ";  // 0: 1/sqrt(HEAD_DIM)\n",
        "constant constexpr uint MV_ROWS = ", format_int(KernelConfig::kMatvecRowsPerSimdgroup), ";\n",
        c.has_any_gemm() ? gemm_tile.view() : std::string_view(),
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

// Row r of up to three matrices of one row length stacked as one (a fused projection; matvec.hpp):
// rows [0, split1) are w0's, [split1, split2) w1's, the rest w2's.
inline DPTR(const uchar) stacked_row(DPTR(const uchar) w0, DPTR(const uchar) w1, DPTR(const uchar) w2, uint r, uint split1,
                                     uint split2, uint row_bytes) {
    if (r < split1) return w0 + r * row_bytes;
    if (r < split2) return w1 + (r - split1) * row_bytes;
    return w2 + (r - split2) * row_bytes;
}

)msl";

}  // namespace forge::metal_src
