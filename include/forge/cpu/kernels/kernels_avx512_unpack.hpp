#pragma once
// A weight row unpacked for the AVX-512 batch kernels (VNNI and AMX): each block's codes as bytes in
// value order and its float scale (and, for weights with mins, its negated float min), so that a tile's
// rows are decoded once and reused by every group of tokens in the batch. A block is 32 values, or 16
// for Q6_K, whose sub-blocks of 16 have scales of their own.
//
// Codes are unsigned w + offset (vpdpbusd's first operand; the activations carry the correction: Q8_0's
// w ^ 0x80, the raw codes of Q4_0, Q5_0 and Q6_K), or
// with kSigned the signed values w themselves (AMX's tdpbssd takes two signed operands). For Q4_K and
// Q5_K the codes are q (0..31) in both, and a block's value is scale * q + min (min negative).
#include "forge/cpu/kernels/kernels_avx512.hpp"
#include "forge/cpu/kernels/kernels_avx512_blocks.hpp"
#include "forge/cpu/kernels/q8_lanes.hpp"

#if FORGE_HAVE_AVX512
#include <cstdint>
#include <cstring>

#include "forge/cpu/simd/x86.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu::unpack {

// How a weight type's blocks meet the batch kernels' activations (Q8Lanes).
template <DType W>
struct Format {
    static_assert(W == DType::Q8_0 || W == DType::Q4_0 || W == DType::Q5_0 || W == DType::Q4_K || W == DType::Q5_K || W == DType::Q6_K,
                  "the AVX-512 batch kernels unpack Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K rows");
    static constexpr bool kK = W == DType::Q4_K || W == DType::Q5_K || W == DType::Q6_K;
    static constexpr bool kMins = W == DType::Q4_K || W == DType::Q5_K;
    static constexpr int kValues = W == DType::Q6_K ? 16 : 32;  // per block
    static constexpr int kOffset = W == DType::Q8_0 ? 128 : W == DType::Q4_0 ? 8 : W == DType::Q5_0 ? 16 : W == DType::Q6_K ? 32 : 0;
    static constexpr LanesLayout kLayout{.offset = kOffset, .block = kValues, .k_codes = kK, .sums = kMins};
};

inline float f16_scale(const std::byte* at) { return _cvtsh_ss(load_u16(at)); }

// A Q8_0 / Q4_0 / Q5_0 block's 32 codes in value order.
template <DType W, bool kSigned>
inline __m256i block_codes(const std::byte* block) {
    if constexpr (W == DType::Q8_0) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
        return kSigned ? q : _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
    } else {
        __m256i u;
        if constexpr (W == DType::Q5_0) {
            u = avx512_blocks::q5_0_codes(block);
        } else {
            const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
            const __m128i low = _mm_set1_epi8(0x0f);
            u = _mm256_setr_m128i(_mm_and_si128(q, low), _mm_and_si128(_mm_srli_epi16(q, 4), low));
        }
        return kSigned ? _mm256_sub_epi8(u, _mm256_set1_epi8(char(Format<W>::kOffset))) : u;
    }
}

// A K-quant super-block's 256 codes in value order (four vectors of 64, as its one-token kernel reads
// them), its blocks' scales and negated mins.
template <DType W, bool kSigned>
inline void super_block(const std::byte* block, __m512i (&codes)[4], float* scales, float* mins) {
    if constexpr (W == DType::Q6_K) {
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
        FORGE_UNROLL for (int h = 0; h < 2; ++h) avx512_blocks::q6_codes(b, h, codes[2 * h], codes[2 * h + 1]);
        if constexpr (kSigned)
            for (auto& c : codes) c = _mm512_sub_epi8(c, _mm512_set1_epi8(32));
        const float d = f16_to_f32(b.d);
        for (int j = 0; j < 16; ++j) scales[j] = d * float(b.scales[j]);
    } else {
        const auto& b = *reinterpret_cast<const std::conditional_t<W == DType::Q4_K, BlockQ4_K, BlockQ5_K>*>(block);
        FORGE_UNROLL for (int k = 0; k < 2; ++k) avx512_blocks::k4_nibbles(b.qs, k, codes[2 * k], codes[2 * k + 1]);
        if constexpr (W == DType::Q5_K)
            FORGE_UNROLL for (int j = 0; j < 4; ++j) codes[j] = avx512_blocks::q5_k_codes(b.qh, j, codes[j]);
        alignas(16) std::uint8_t sm[16];  // 8 scales, then 8 mins
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), avx512_blocks::k4_scales_and_mins(b.scales));
        const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        for (int j = 0; j < 8; ++j) {
            scales[j] = d * float(sm[j]);
            mins[j] = -(dmin * float(sm[8 + j]));
        }
    }
}

// A row's `blocks` blocks: block b's codes at codes + b * code_stride, its scale at scales[b * scale_stride]
// and, for weights with mins, its negated min at mins[b * scale_stride].
template <DType W, bool kSigned = false>
inline void row(const std::byte* src, int blocks, std::uint8_t* codes, std::size_t code_stride, float* scales, float* mins,
                std::size_t scale_stride) {
    using F = Format<W>;
    if constexpr (F::kK) {
        constexpr int kPer = kQK_K / F::kValues;  // blocks per super-block
        for (int s = 0; s < blocks / kPer; ++s) {
            __m512i v[4];
            float sc[kPer], mn[kPer];
            super_block<W, kSigned>(src + std::size_t(s) * dtype_info(W).block_bytes, v, sc, mn);
            alignas(64) std::uint8_t all[kQK_K];
            for (int k = 0; k < 4; ++k) _mm512_store_si512(all + 64 * k, v[k]);
            for (int j = 0; j < kPer; ++j) {
                const std::size_t b = std::size_t(s * kPer + j);
                std::memcpy(codes + b * code_stride, all + j * F::kValues, F::kValues);
                scales[b * scale_stride] = sc[j];
                if constexpr (F::kMins) mins[b * scale_stride] = mn[j];
            }
        }
        return;
    }
    constexpr std::size_t kBytes = dtype_info(W).block_bytes;
    const auto store2 = [&](int b, __m512i two) {  // blocks b and b + 1
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b) * code_stride), _mm512_castsi512_si256(two));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b + 1) * code_stride), _mm512_extracti64x4_epi64(two, 1));
    };
    int b = 0;
    if constexpr (W == DType::Q4_0) {
        // Four blocks at a time: their low and high nibbles in two vectors, interleaved back into block
        // order with two permutes, where one block at a time cost four vector instructions per 16 bytes.
        const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        for (; b + 4 <= blocks; b += 4) {
            const __m512i q = q4_0_nibbles(src + std::size_t(b) * kBytes, 4);
            __m512i lo = _mm512_and_si512(q, _mm512_set1_epi8(0x0f)), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0f));
            if constexpr (kSigned) {
                lo = _mm512_sub_epi8(lo, _mm512_set1_epi8(8));
                hi = _mm512_sub_epi8(hi, _mm512_set1_epi8(8));
            }
            store2(b, _mm512_permutex2var_epi64(lo, first, hi));
            store2(b + 2, _mm512_permutex2var_epi64(lo, second, hi));
            for (int k = 0; k < 4; ++k) scales[std::size_t(b + k) * scale_stride] = f16_scale(src + std::size_t(b + k) * kBytes);
        }
    }
    for (; b < blocks; ++b) {
        const std::byte* block = src + std::size_t(b) * kBytes;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b) * code_stride), block_codes<W, kSigned>(block));
        scales[std::size_t(b) * scale_stride] = f16_scale(block);
    }
}

}  // namespace forge::cpu::unpack
#endif
