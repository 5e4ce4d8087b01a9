#pragma once
// The K-quants Q2_K to Q6_K that most published GGUFs use: super-blocks of 256 weights in 8 or 16 sub-blocks
// with their own quantized scales, bit-exact with ggml's block_q*_K. They are dequantized exactly as ggml's
// dequantize_row_q*_K do (same float operations in the same order), which is what the reference matmul and
// `forge quantize` read; Q8_K is the activation format their dot products pair with.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forge/core/half.hpp"

namespace forge {

inline constexpr int kQK_K = 256;

// Q2_K: value = d * sc * q - dmin * m, 16 sub-blocks of 16 with a 4-bit scale sc (low nibble of scales[j]) and
// 4-bit min m (high nibble), q 2 bits. Each 32 bytes of qs hold 128 weights as four 2-bit planes.
struct BlockQ2_K {
    std::uint8_t scales[kQK_K / 16];
    std::uint8_t qs[kQK_K / 4];
    std::uint16_t d;     // f16 scale of the sub-block scales
    std::uint16_t dmin;  // f16 scale of the sub-block mins
};
static_assert(sizeof(BlockQ2_K) == 84 && alignof(BlockQ2_K) == 2, "BlockQ2_K must match ggml's 84-byte layout");

// Q3_K: value = d * (sc - 32) * (q - 4 * !hbit), 16 sub-blocks of 16 with a 6-bit scale sc, q's low 2 bits in
// qs (laid out as Q2_K's) and its third bit, inverted, in hmask.
struct BlockQ3_K {
    std::uint8_t hmask[kQK_K / 8];
    std::uint8_t qs[kQK_K / 4];
    std::uint8_t scales[12];
    std::uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110 && alignof(BlockQ3_K) == 2, "BlockQ3_K must match ggml's 110-byte layout");

// Q4_K: value = d * sc * q - dmin * m, 8 sub-blocks of 32 with a 6-bit scale sc and 6-bit min m each, q 4 bits.
struct BlockQ4_K {
    std::uint16_t d;     // f16 scale of the sub-block scales
    std::uint16_t dmin;  // f16 scale of the sub-block mins
    std::uint8_t scales[12];
    std::uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144 && alignof(BlockQ4_K) == 2, "BlockQ4_K must match ggml's 144-byte layout");

// Q5_K: as Q4_K with a fifth bit per weight in qh.
struct BlockQ5_K {
    std::uint16_t d;
    std::uint16_t dmin;
    std::uint8_t scales[12];
    std::uint8_t qh[kQK_K / 8];
    std::uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176 && alignof(BlockQ5_K) == 2, "BlockQ5_K must match ggml's 176-byte layout");

// Q6_K: value = d * scale * (q - 32), 16 sub-blocks of 16 with an int8 scale each, q 6 bits (4 in ql, 2 in qh).
struct BlockQ6_K {
    std::uint8_t ql[kQK_K / 2];
    std::uint8_t qh[kQK_K / 4];
    std::int8_t scales[kQK_K / 16];
    std::uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210 && alignof(BlockQ6_K) == 2, "BlockQ6_K must match ggml's 210-byte layout");

// Q8_K: the activations a K-quant dot product reads: 256 int8 codes, value = q * d, and the sum of each 16 codes
// (the K-quants with mins subtract min * sum instead of expanding the mins per weight).
struct BlockQ8_K {
    float d;
    std::int8_t qs[kQK_K];
    std::int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292 && alignof(BlockQ8_K) == 4, "BlockQ8_K must match ggml's 292-byte layout");

// Quantizes n activations (a multiple of 256) as ggml's quantize_row_q8_K_ref: the value of largest magnitude
// (the first, if several) maps to -127 (so codes run -127..127, a +128 clamped), codes are the float products
// rounded to nearest-even, d = 1 / scale unrounded, and each 16 codes' sum kept. NaN is skipped when finding
// the largest value, and a product that is not finite (a NaN, or a scale whose inverse overflowed) gives
// code 0. The product is rounded by nearbyint, not by adding 1.5 * 2^23 as ggml does: under GCC's default
// contraction that addition becomes an FMA where the target has one, and codes would depend on the flags.
inline void quantize_row_q8_K(const float* x, BlockQ8_K* out, std::size_t n) {
    for (std::size_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < kQK_K; ++j) {
            const float ax = x[j] < 0 ? -x[j] : x[j];
            if (ax > amax) amax = ax, max = x[j];
        }
        BlockQ8_K& y = out[b];
        if (amax == 0.0f) {
            y = BlockQ8_K{};
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < kQK_K; ++j) {
            const float v = std::nearbyint(iscale * x[j]);
            y.qs[j] = std::isfinite(v) ? static_cast<std::int8_t>(std::min(127.0f, v)) : std::int8_t(0);
        }
        for (int j = 0; j < kQK_K / 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += y.qs[j * 16 + i];
            y.bsums[j] = static_cast<std::int16_t>(sum);
        }
        y.d = 1.0f / iscale;
    }
}

inline void dequantize_row_q2_K(const BlockQ2_K* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / kQK_K; ++b) {
        const float d = f16_to_f32(in[b].d);
        const float min = f16_to_f32(in[b].dmin);
        const std::uint8_t* q = in[b].qs;
        const std::uint8_t* sc = in[b].scales;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part, ++sc) {
                    const float dl = d * float(*sc & 0xF), ml = min * float(*sc >> 4);
                    for (int l = 0; l < 16; ++l) *y++ = dl * float((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

// Q3_K's sixteen 6-bit scales, unbiased (sc - 32): low nibbles in bytes 0-7 (sub-blocks 0-7 low, then 8-15
// high), top bit pairs in bytes 8-11 (byte 8 + j % 4 holds sub-block j's pair at bit 2 * (j / 4)).
constexpr void k3_scales(const std::uint8_t* s, int* out) {
    for (int j = 0; j < 16; ++j) {
        const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (low | (high << 4)) - 32;
    }
}

inline void dequantize_row_q3_K(const BlockQ3_K* in, float* y, std::size_t n) {
    int scales[16];
    for (std::size_t b = 0; b < n / kQK_K; ++b) {
        const float d = f16_to_f32(in[b].d);
        k3_scales(in[b].scales, scales);
        const std::uint8_t* q = in[b].qs;
        const std::uint8_t* hm = in[b].hmask;
        int is = 0;
        std::uint8_t m = 1;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = std::uint8_t(m << 1)) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = d * float(scales[is++]);
                    for (int l = 16 * part; l < 16 * part + 16; ++l)
                        *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

// Sub-block j's 6-bit scale and min, packed in 12 bytes: sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales)
// and 4-7 (mins); sub-blocks 4-7 in the nibbles of bytes 8-11 with their top two bits in bytes 0-7's top bits.
constexpr void k4_scale_min(int j, const std::uint8_t* q, std::uint8_t& sc, std::uint8_t& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Q4_K and Q5_K share everything but the fifth bit: qh is null for Q4_K.
inline void dequantize_k4_k5(std::uint16_t d16, std::uint16_t dmin16, const std::uint8_t* scales, const std::uint8_t* qh,
                             const std::uint8_t* q, float* y) {
    const float d = f16_to_f32(d16);
    const float min = f16_to_f32(dmin16);
    std::uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, q += 32) {
        std::uint8_t sc, m;
        k4_scale_min(is, scales, sc, m);
        const float d1 = d * sc, m1 = min * m;
        k4_scale_min(is + 1, scales, sc, m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * float((q[l] & 0xF) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float((q[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
        u1 = static_cast<std::uint8_t>(u1 << 2);
        u2 = static_cast<std::uint8_t>(u2 << 2);
    }
}

inline void dequantize_row_q4_K(const BlockQ4_K* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / kQK_K; ++b, y += kQK_K)
        dequantize_k4_k5(in[b].d, in[b].dmin, in[b].scales, nullptr, in[b].qs, y);
}

inline void dequantize_row_q5_K(const BlockQ5_K* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / kQK_K; ++b, y += kQK_K)
        dequantize_k4_k5(in[b].d, in[b].dmin, in[b].scales, in[b].qh, in[b].qs, y);
}

// Each half of 128 weights: ql[l] and ql[l + 32] hold four weights' low nibbles, qh[l] their four top bit pairs.
inline void dequantize_row_q6_K(const BlockQ6_K* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / kQK_K; ++b) {
        const float d = f16_to_f32(in[b].d);
        const std::uint8_t* ql = in[b].ql;
        const std::uint8_t* qh = in[b].qh;
        const std::int8_t* sc = in[b].scales;
        for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * float(sc[is]) * float(q1);
                y[l + 32] = d * float(sc[is + 2]) * float(q2);
                y[l + 64] = d * float(sc[is + 4]) * float(q3);
                y[l + 96] = d * float(sc[is + 6]) * float(q4);
            }
        }
    }
}

}  // namespace forge
