#pragma once
// Portable micro-kernels: plain C++ the compiler may vectorise, for targets without a SIMD kernel and
// as the fallback every SIMD kernel is tested against.
#include <algorithm>
#include <cmath>

#include "forge/core/half.hpp"
#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q4_1.hpp"
#include "forge/quant/q5.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

// a + w * x, rounded once where the target has FMA and twice where it has none. Left to itself GCC
// fuses or not as its vectoriser sees fit, which differed between tile shapes: a token's result then
// depended on how many tokens shared its tile.
inline float multiply_add(float w, float x, float a) {
#if defined(__FMA__) || defined(__aarch64__)
    return std::fma(w, x, a);
#else
    return a + w * x;
#endif
}

// F32 / F16 / BF16 weights times float activations, eight partial sums per output. BF16 rounds the
// activations to BF16 first, as llama.cpp does (BF16's vec_dot_type is BF16).
template <DType W>
    requires(W == DType::F32 || W == DType::F16 || W == DType::BF16)
struct Kernel<isa::Portable, W> {
    static constexpr int kStep = 8, kRows = 4, kTokens = 4;
    using Input = FloatRows;
    struct Acc {
        float v[kStep];
    };
    using Vec = Acc;

    static int steps(int cols) { return (cols + kStep - 1) / kStep; }
    static Acc zero() { return {}; }
    static Vec load_w(const std::byte* row, int s, int cols) {
        Vec out{};
        const int n = std::min(kStep, cols - s * kStep);
        for (int k = 0; k < n; ++k) {
            const std::size_t i = std::size_t(s * kStep + k);
            if constexpr (W == DType::F32) std::memcpy(&out.v[k], row + 4 * i, 4);
            else if constexpr (W == DType::F16) out.v[k] = f16_to_f32(load_u16(row + 2 * i));
            else out.v[k] = bf16_to_f32(load_u16(row + 2 * i));
        }
        return out;
    }
    static Vec load_x(const Input& in, int t, int s) {
        Vec out{};
        const int n = std::min(kStep, in.cols - s * kStep);
        std::copy_n(in.row(t) + s * kStep, n, out.v);
        if constexpr (W == DType::BF16)
            for (float& v : out.v) v = bf16_to_f32(f32_to_bf16(v));
        return out;
    }
    static void madd(Acc& a, const Vec& w, const Vec& x) {
        for (int k = 0; k < kStep; ++k) a.v[k] = multiply_add(w.v[k], x.v[k], a.v[k]);
    }
    static float reduce(const Acc& a) {
        return ((a.v[0] + a.v[4]) + (a.v[1] + a.v[5])) + ((a.v[2] + a.v[6]) + (a.v[3] + a.v[7]));
    }
};

// Q8_0 / Q4_0 weights times Q8 activations: an exact integer dot per block, scaled once.
template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct Kernel<isa::Portable, W> {
    static constexpr int kStep = 32, kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{};
    using Input = Q8Rows;
    using Acc = float;
    struct WVec {
        std::int8_t q[32];
        float d;
    };
    struct XVec {
        const std::int8_t* q;
        float d;
    };
    static constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);

    static int steps(int cols) { return cols / kStep; }
    static Acc zero() { return 0.0f; }
    static WVec load_w(const std::byte* row, int s, int) {
        const std::byte* b = row + std::size_t(s) * kBlockBytes;
        WVec out;
        out.d = f16_to_f32(load_u16(b));
        if constexpr (W == DType::Q8_0) {
            std::memcpy(out.q, b + 2, 32);
        } else {
            for (int j = 0; j < 16; ++j) {
                const auto v = static_cast<std::uint8_t>(b[2 + j]);
                out.q[j] = static_cast<std::int8_t>((v & 0x0f) - 8);
                out.q[j + 16] = static_cast<std::int8_t>((v >> 4) - 8);
            }
        }
        return out;
    }
    static XVec load_x(const Input& in, int t, int s) { return {in.qs(t, s), in.d(t, s)[0]}; }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        std::int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += std::int32_t(w.q[j]) * std::int32_t(x.q[j]);
        a = multiply_add(float(sum), w.d * x.d, a);
    }
    static float reduce(Acc a) { return a; }
};

// --- ggml's other block types: one weight block per step against its partner activation block ---------
// Each madd is ggml's generic vec_dot for one block (ggml-cpu/quants.c): exact integer sums of codes times
// codes with the sub-block scales, then the block's float scales applied once. The K-quants pair with Q8_K,
// Q4_1 and Q5_1 with Q8_1, Q5_0 with Q8_0 (Q8Rows, as the Q8_0 kernel above reads them).

// What every such kernel shares: one block of `Elems` weights (`BlockBytes` bytes) per step, read in place.
template <class In, int Elems, std::size_t BlockBytes>
struct BlockStepKernel {
    static constexpr int kStep = Elems, kRows = 4, kTokens = 4;
    // Compiled once for every row length: per-length copies of every type's kernels would multiply the
    // compile time of a program that registers many lengths (row_lengths.hpp).
    static constexpr bool kGenericLength = true;
    using Input = In;
    using Acc = float;
    static int steps(int cols) { return cols / kStep; }
    static Acc zero() { return 0.0f; }
    static const std::byte* load_w(const std::byte* row, int s, int) { return row + std::size_t(s) * BlockBytes; }
    static float reduce(Acc a) { return a; }
};

// A K-quant block's codes in element order (Q2_K..Q6_K as their dequantizers read them, k_quants.hpp), in
// loops of 32 contiguous values as ggml's generic code has them, which the compiler vectorises.
inline void q2_K_codes(const BlockQ2_K& b, std::int8_t* q) {
    for (int h = 0; h < 2; ++h)
        for (int plane = 0; plane < 4; ++plane, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = std::int8_t((b.qs[32 * h + l] >> (2 * plane)) & 3);
}
inline void q3_K_codes(const BlockQ3_K& b, std::int8_t* q) {
    for (int h = 0; h < 2; ++h)
        for (int plane = 0; plane < 4; ++plane, q += 32)
            for (int l = 0; l < 32; ++l)
                q[l] = std::int8_t(((b.qs[32 * h + l] >> (2 * plane)) & 3) - 4 + 4 * ((b.hmask[l] >> (4 * h + plane)) & 1));
}
// Q4_K, and Q5_K with its fifth bits (qh null for Q4_K).
inline void q4_K_codes(const std::uint8_t* qs, const std::uint8_t* qh, std::int8_t* q) {
    for (int g = 0; g < 4; ++g, q += 64, qs += 32) {
        for (int l = 0; l < 32; ++l) q[l] = std::int8_t(qs[l] & 0xF), q[l + 32] = std::int8_t(qs[l] >> 4);
        if (qh)
            for (int l = 0; l < 32; ++l)
                q[l] = std::int8_t(q[l] + 16 * ((qh[l] >> (2 * g)) & 1)), q[l + 32] = std::int8_t(q[l + 32] + 16 * ((qh[l] >> (2 * g + 1)) & 1));
    }
}
inline void q6_K_codes(const BlockQ6_K& b, std::int8_t* q) {
    const std::uint8_t* ql = b.ql;
    const std::uint8_t* qh = b.qh;
    for (int h = 0; h < 2; ++h, q += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; ++l) {
            q[l] = std::int8_t(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            q[l + 32] = std::int8_t(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = std::int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = std::int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
}

// Sum over sub-blocks of `Sub` codes: scale[j] * (codes . activations).
template <int Sub>
inline std::int32_t scaled_dot(const std::int8_t* w, const std::int8_t* x, const int* scales) {
    std::int32_t total = 0;
    for (int j = 0; j < kQK_K / Sub; ++j) {
        std::int32_t dot = 0;
        for (int l = 0; l < Sub; ++l) dot += std::int32_t(w[j * Sub + l]) * std::int32_t(x[j * Sub + l]);
        total += scales[j] * dot;
    }
    return total;
}

template <DType W>
    requires(W == DType::Q2_K || W == DType::Q3_K || W == DType::Q4_K || W == DType::Q5_K || W == DType::Q6_K)
struct Kernel<isa::Portable, W> : BlockStepKernel<Q8KRows, kQK_K, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    static const BlockQ8_K* load_x(const Q8KRows& in, int t, int s) { return in.row(t) + s; }

    // acc += d * sum(scale * dot) - dmin * sum(min * activation sums), d and dmin times the activations' d.
    static void madd(float& a, const std::byte* block, const BlockQ8_K* x) {
        std::int8_t q[kQK_K];
        int scales[16];
        std::int32_t mins = 0, dot;
        float d, dmin = 0.0f;
        if constexpr (W == DType::Q2_K) {
            const auto& b = *reinterpret_cast<const BlockQ2_K*>(block);
            q2_K_codes(b, q);
            for (int j = 0; j < 16; ++j) scales[j] = b.scales[j] & 0xF, mins += x->bsums[j] * (b.scales[j] >> 4);
            dot = scaled_dot<16>(q, x->qs, scales);
            d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        } else if constexpr (W == DType::Q3_K) {
            const auto& b = *reinterpret_cast<const BlockQ3_K*>(block);
            q3_K_codes(b, q);
            k3_scales(b.scales, scales);
            dot = scaled_dot<16>(q, x->qs, scales);
            d = f16_to_f32(b.d);
        } else if constexpr (W == DType::Q6_K) {
            const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
            q6_K_codes(b, q);
            for (int j = 0; j < 16; ++j) scales[j] = b.scales[j];
            dot = scaled_dot<16>(q, x->qs, scales);
            d = f16_to_f32(b.d);
        } else {
            using B = std::conditional_t<W == DType::Q4_K, BlockQ4_K, BlockQ5_K>;
            const auto& b = *reinterpret_cast<const B*>(block);
            if constexpr (W == DType::Q4_K) q4_K_codes(b.qs, nullptr, q);
            else q4_K_codes(b.qs, b.qh, q);
            for (int j = 0; j < 8; ++j) {
                std::uint8_t sc, m;
                k4_scale_min(j, b.scales, sc, m);
                scales[j] = sc;
                mins += (x->bsums[2 * j] + x->bsums[2 * j + 1]) * m;
            }
            dot = scaled_dot<32>(q, x->qs, scales);
            d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        }
        a = multiply_add(d * x->d, float(dot), a);
        if constexpr (W == DType::Q2_K || W == DType::Q4_K || W == DType::Q5_K) a = multiply_add(-(dmin * x->d), float(mins), a);
    }
};

// Q4_1 / Q5_1 against Q8_1: acc += (d_w * d_x) * dot + m * s_x.
template <DType W>
    requires(W == DType::Q4_1 || W == DType::Q5_1)
struct Kernel<isa::Portable, W> : BlockStepKernel<Q81Rows, 32, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    static const BlockQ8_1* load_x(const Q81Rows& in, int t, int s) { return in.row(t) + s; }
    static void madd(float& a, const std::byte* block, const BlockQ8_1* x) {
        int q[32];
        std::uint16_t d, m;
        if constexpr (W == DType::Q4_1) {
            const auto& b = *reinterpret_cast<const BlockQ4_1*>(block);
            for (int j = 0; j < 16; ++j) q[j] = b.qs[j] & 0xF, q[j + 16] = b.qs[j] >> 4;
            d = b.d, m = b.m;
        } else {
            const auto& b = *reinterpret_cast<const BlockQ5_1*>(block);
            q5_codes(b.qh, b.qs, q);
            d = b.d, m = b.m;
        }
        std::int32_t dot = 0;
        for (int j = 0; j < 32; ++j) dot += q[j] * std::int32_t(x->qs[j]);
        a = multiply_add(f16_to_f32(d) * f16_to_f32(x->d), float(dot), a);
        a = multiply_add(f16_to_f32(m), f16_to_f32(x->s), a);
    }
};

// Q5_0 against Q8_0 activations: acc += (d_w * d_x) * dot, codes q - 16.
template <>
struct Kernel<isa::Portable, DType::Q5_0> : BlockStepKernel<Q8Rows, 32, sizeof(BlockQ5_0)> {
    static constexpr Q8Layout kLayout{};
    struct XVec {
        const std::int8_t* q;
        float d;
    };
    static XVec load_x(const Q8Rows& in, int t, int s) { return {in.qs(t, s), in.d(t, s)[0]}; }
    static void madd(float& a, const std::byte* block, const XVec& x) {
        const auto& b = *reinterpret_cast<const BlockQ5_0*>(block);
        int q[32];
        q5_codes(b.qh, b.qs, q);
        std::int32_t dot = 0;
        for (int j = 0; j < 32; ++j) dot += (q[j] - 16) * std::int32_t(x.q[j]);
        a = multiply_add(f16_to_f32(b.d) * x.d, float(dot), a);
    }
};

}  // namespace forge::cpu
