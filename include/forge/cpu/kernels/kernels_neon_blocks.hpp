#pragma once
// NEON (dot-product) micro-kernels for the block types published files are mostly made of: Q4_K and Q6_K
// against Q8_K activations, Q5_0 against the Q8_0 kernel's activation rows. sdot multiplies signed codes
// directly (Q6_K's q - 32, Q5_0's q - 16), each sub-block's dot is scaled in int32, so each computes exactly
// the integer sums of the portable kernel (kernels_portable.hpp) and differs from it only in float rounding.
#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_neon.hpp"
#include "forge/cpu/kernels/kernels_portable.hpp"

#if FORGE_HAVE_NEON
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forge/quant/k_quants.hpp"
#include "forge/quant/q5.hpp"

namespace forge::cpu {

namespace neon_blocks {

// codes . activation codes over 32 values.
inline int32x4_t dot32(int8x16_t lo, int8x16_t hi, const std::int8_t* x) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(x)), hi, vld1q_s8(x + 16));
}

// Shared by the K-quant kernels: a step is one super-block, read in place.
template <DType W>
struct KQuantStep : BlockStepKernel<Q8KRows, kQK_K, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    using Acc = float32x4_t;
    static Acc zero() { return vdupq_n_f32(0.0f); }
    static const BlockQ8_K* load_x(const Q8KRows& in, int t, int s) { return in.row(t) + s; }
    static float reduce(Acc a) { return vaddvq_f32(a); }
};

}  // namespace neon_blocks

// Q4_K: each 32 bytes of qs hold sub-block 2k in their low nibbles and 2k + 1 in their high ones.
template <>
struct Kernel<isa::Neon, DType::Q4_K> : neon_blocks::KQuantStep<DType::Q4_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const BlockQ4_K*>(block);
        int32x4_t sum = vdupq_n_s32(0);
        std::int32_t mins = 0;
        const uint8x16_t nibble = vdupq_n_u8(0x0f);
        for (int k = 0; k < 4; ++k) {
            std::uint8_t sc0, m0, sc1, m1;
            k4_scale_min(2 * k, b.scales, sc0, m0);
            k4_scale_min(2 * k + 1, b.scales, sc1, m1);
            mins += (x->bsums[4 * k] + x->bsums[4 * k + 1]) * m0 + (x->bsums[4 * k + 2] + x->bsums[4 * k + 3]) * m1;
            const uint8x16_t q0 = vld1q_u8(b.qs + 32 * k), q1 = vld1q_u8(b.qs + 32 * k + 16);
            const int32x4_t low = neon_blocks::dot32(vreinterpretq_s8_u8(vandq_u8(q0, nibble)), vreinterpretq_s8_u8(vandq_u8(q1, nibble)),
                                                     x->qs + 64 * k);
            const int32x4_t high = neon_blocks::dot32(vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)),
                                                      x->qs + 64 * k + 32);
            sum = vmlaq_n_s32(vmlaq_n_s32(sum, low, sc0), high, sc1);
        }
        a = vfmaq_n_f32(a, vcvtq_f32_s32(sum), f16_to_f32(b.d) * x->d);
        a = vfmaq_n_f32(a, vcvtq_f32_s32(vsetq_lane_s32(mins, vdupq_n_s32(0), 0)), -(f16_to_f32(b.dmin) * x->d));
    }
};

// Q6_K: codes (4 bits in ql, 2 in qh) minus 32, 16 sub-blocks of 16 with int8 scales. Per half of 128 values,
// quarter k's low nibbles are ql[32 (k & 1) ..] shifted by 4 (k / 2), its top bits qh >> 2k.
template <>
struct Kernel<isa::Neon, DType::Q6_K> : neon_blocks::KQuantStep<DType::Q6_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
        int32x4_t sum = vdupq_n_s32(0);
        const uint8x16_t nibble = vdupq_n_u8(0x0f), two = vdupq_n_u8(0x03);
        const int8x16_t offset = vdupq_n_s8(32);
        for (int h = 0; h < 2; ++h)
            for (int half16 = 0; half16 < 2; ++half16) {  // values l = 16 half16 .. + 15 of each quarter
                const uint8x16_t ql0 = vld1q_u8(b.ql + 64 * h + 16 * half16), ql1 = vld1q_u8(b.ql + 64 * h + 32 + 16 * half16);
                const uint8x16_t qh = vld1q_u8(b.qh + 32 * h + 16 * half16);
                const uint8x16_t low[4] = {vandq_u8(ql0, nibble), vandq_u8(ql1, nibble), vshrq_n_u8(ql0, 4), vshrq_n_u8(ql1, 4)};
                const uint8x16_t high[4] = {vandq_u8(qh, two), vandq_u8(vshrq_n_u8(qh, 2), two), vandq_u8(vshrq_n_u8(qh, 4), two),
                                            vshrq_n_u8(qh, 6)};
                for (int k = 0; k < 4; ++k) {
                    const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low[k], vshlq_n_u8(high[k], 4))), offset);
                    const int32x4_t dot = vdotq_s32(vdupq_n_s32(0), q, vld1q_s8(x->qs + 128 * h + 32 * k + 16 * half16));
                    sum = vmlaq_n_s32(sum, dot, b.scales[8 * h + 2 * k + half16]);
                }
            }
        a = vfmaq_n_f32(a, vcvtq_f32_s32(sum), f16_to_f32(b.d) * x->d);
    }
};

// Q5_0 reads the Q8_0 kernel's activations and takes its multiply: codes q - 16 as signed bytes.
template <>
struct Kernel<isa::Neon, DType::Q5_0> : Kernel<isa::Neon, DType::Q8_0> {
    static constexpr bool kGenericLength = true;
    static WVec load_w(const std::byte* row, int s, int) {
        const auto& b = *reinterpret_cast<const BlockQ5_0*>(row + std::size_t(s) * sizeof(BlockQ5_0));
        int q[32];
        q5_codes(b.qh, b.qs, q);
        std::int8_t c[32];
        for (int j = 0; j < 32; ++j) c[j] = std::int8_t(q[j] - 16);
        return {vld1q_s8(c), vld1q_s8(c + 16), f16_to_f32(b.d)};
    }
};

}  // namespace forge::cpu
#endif
