#pragma once
// ARM NEON micro-kernels (Apple CPUs and other ARMv8.2+ cores with the dot-product extension): sdot
// multiplies signed codes directly, so Q4_0 nibbles are recentred (w - 8) and no correction is needed.
#include "forge/cpu/kernels/kernel.hpp"

#if FORGE_HAVE_NEON
#include <arm_neon.h>

#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

template <DType W>
    requires(W == DType::F32 || W == DType::F16)
struct Kernel<isa::Neon, W> {
    static constexpr int kStep = 8, kRows = 4, kTokens = 4;
    using Input = FloatRows;
    struct Acc {
        float32x4_t lo, hi;
    };
    using Vec = Acc;

    static int steps(int cols) { return (cols + kStep - 1) / kStep; }
    static Acc zero() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
    static Vec load_w(const std::byte* row, int s, int cols) {
        constexpr std::size_t kSize = W == DType::F32 ? 4 : 2;
        const std::byte* p = row + std::size_t(s) * kStep * kSize;
        alignas(16) std::byte tail[kStep * kSize] = {};
        if (cols - s * kStep < kStep) {  // the row's partial last step, zero-filled
            std::memcpy(tail, p, std::size_t(cols - s * kStep) * kSize);
            p = tail;
        }
        if constexpr (W == DType::F32) {
            const float* f = reinterpret_cast<const float*>(p);
            return {vld1q_f32(f), vld1q_f32(f + 4)};
        } else {
            const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const std::uint16_t*>(p)));
            return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
        }
    }
    static Vec load_x(const Input& in, int t, int s) {
        const float* p = in.row(t) + s * kStep;
        alignas(16) float tail[kStep] = {};
        if (in.cols - s * kStep < kStep) {
            std::memcpy(tail, p, std::size_t(in.cols - s * kStep) * sizeof(float));
            p = tail;
        }
        return {vld1q_f32(p), vld1q_f32(p + 4)};
    }
    static void madd(Acc& a, const Vec& w, const Vec& x) {
        a.lo = vfmaq_f32(a.lo, w.lo, x.lo);
        a.hi = vfmaq_f32(a.hi, w.hi, x.hi);
    }
    static float reduce(const Acc& a) { return vaddvq_f32(vaddq_f32(a.lo, a.hi)); }
};

template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct Kernel<isa::Neon, W> {
    static constexpr int kStep = 32, kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{};
    using Input = Q8Rows;
    using Acc = float32x4_t;
    struct WVec {
        int8x16_t lo, hi;
        float d;
    };
    struct XVec {
        int8x16_t lo, hi;
        float d;
    };
    static constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);

    static int steps(int cols) { return cols / 32; }
    static Acc zero() { return vdupq_n_f32(0.0f); }
    static WVec load_w(const std::byte* row, int s, int) {
        const std::byte* b = row + std::size_t(s) * kBlockBytes;
        const auto* q = reinterpret_cast<const std::uint8_t*>(b + 2);
        const float d = f16_to_f32(load_u16(b));
        if constexpr (W == DType::Q8_0) {
            return {vreinterpretq_s8_u8(vld1q_u8(q)), vreinterpretq_s8_u8(vld1q_u8(q + 16)), d};
        } else {
            const uint8x16_t v = vld1q_u8(q);
            const int8x16_t eight = vdupq_n_s8(8);
            return {vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), eight),
                    vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight), d};
        }
    }
    static XVec load_x(const Input& in, int t, int s) {
        const std::int8_t* q = in.qs(t, s);
        return {vld1q_s8(q), vld1q_s8(q + 16), in.d(t, s)[0]};
    }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        const int32x4_t dot = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w.lo, x.lo), w.hi, x.hi);
        a = vfmaq_n_f32(a, vcvtq_f32_s32(dot), w.d * x.d);
    }
    static float reduce(Acc a) { return vaddvq_f32(a); }
};

}  // namespace forge::cpu
#endif
