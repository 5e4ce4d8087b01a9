#pragma once
// AVX-512 VNNI micro-kernels for ggml's other block types that published files are made of: the K-quants
// against Q8_K activations, Q5_0 against the Q8_0 kernel's activation rows. Each computes exactly the
// integer sums of the portable kernel (kernels_portable.hpp), so the results differ from it only in float
// rounding.
//
// K-quants: a step is one 256-value super-block, decoded where it is used (decode's one token reads it once).
// Its codes are made unsigned (Q6_K: q + 32, whose surplus 32 * sum(x) comes off through the activations'
// block sums) and multiplied with the activation codes by vpmaddubsw into pairs, which vpdpwssd multiplies by
// each sub-block's scale (spread over its words by one permute) into int32 lanes: the exact scaled block dot.
#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_avx512.hpp"
#include "forge/cpu/kernels/kernels_portable.hpp"
#include "forge/cpu/simd/hsum.hpp"

#if FORGE_HAVE_AVX512
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "forge/cpu/simd/x86.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q5.hpp"

namespace forge::cpu {

namespace avx512_blocks {

// Word indices picking each word's sub-block scale out of a vector of scales (one per word): word w of
// a vector of 64 codes starting at sub-block First, sub-blocks Width codes wide, is code pair 2w, 2w + 1.
template <int First, int Width>
alignas(64) inline constexpr std::array<std::int16_t, 32> kScaleWords = [] {
    std::array<std::int16_t, 32> idx{};
    for (int w = 0; w < 32; ++w) idx[std::size_t(w)] = std::int16_t(First + 2 * w / Width);
    return idx;
}();

template <int First, int Width>
inline __m512i scale_words(__m512i scales) {
    return _mm512_permutexvar_epi16(_mm512_load_si512(kScaleWords<First, Width>.data()), scales);
}

// sum += (unsigned codes . activation codes) pairwise, times each pair's word of `scales`.
inline __m512i scaled_pairs(__m512i sum, __m512i codes, const std::int8_t* x, __m512i scales) {
    return _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(codes, _mm512_loadu_si512(x)), scales);
}

// Two 256-bit halves as one vector: `a` below, `b` above.
inline __m512i halves(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }

// Values 64j .. 64j + 63 of a Q2_K / Q3_K super-block: their 2-bit planes, 2j % 4 and 2j % 4 + 1 of the 32
// bytes qs + 32 * (j / 2), as bytes 0..3.
inline __m512i two_bit_codes(const std::uint8_t* qs, int j) {
    const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (j / 2))));
    const int shift = 4 * (j % 2);
    return _mm512_and_si512(_mm512_srlv_epi16(q, halves(_mm256_set1_epi16(short(shift)), _mm256_set1_epi16(short(shift + 2)))),
                            _mm512_set1_epi8(3));
}

// Bit 2j (values 64j .. 64j + 31) and bit 2j + 1 (the next 32) of 32 bytes, as a mask of the 64 values.
inline __mmask64 bit_planes(const std::uint8_t* bits, int j) {
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits)));
    return _mm512_test_epi8_mask(h, halves(_mm256_set1_epi8(char(1 << (2 * j))), _mm256_set1_epi8(char(1 << (2 * j + 1)))));
}

// Q4_K/Q5_K's 12 packed bytes to 8 scales then 8 mins, one byte each, as ggml unpacks them, in vector lanes:
// 32-bit words u0..u2 become [u0 & 3f, (u2 & 0f) | (u0 >> 6) << 4, u1 & 3f, (u2 >> 4 & 0f) | (u1 >> 6) << 4]
// (per byte). Unpacking in scalar words and reloading them as a vector stalled on store forwarding.
inline __m128i k4_scales_and_mins(const std::uint8_t* scales) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales));  // bytes 12-15 are the block's qs
    const __m128i p = _mm_srlv_epi32(_mm_shuffle_epi32(v, 0x98), _mm_setr_epi32(0, 0, 0, 4));  // u0, u2, u1, u2 >> 4
    const __m128i tops = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, 0x50), 6), _mm_set1_epi32(0x03030303)), 4);
    const __m128i low = _mm_and_si128(p, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    return _mm_or_si128(low, _mm_and_si128(tops, _mm_setr_epi32(0, -1, 0, -1)));
}

// Values 128k .. 128k + 127 of a Q4_K / Q5_K super-block in value order, their low four bits, 64 a vector:
// each 64 bytes of qs hold two 32-value chunks' low nibbles, then their high nibbles; a 128-bit-lane
// shuffle puts them in value order.
inline void k4_nibbles(const std::uint8_t* qs, int k, __m512i& first, __m512i& second) {
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    const __m512i q = _mm512_loadu_si512(qs + 64 * k);
    const __m512i lo = _mm512_and_si512(q, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nibble);
    first = _mm512_shuffle_i64x2(lo, hi, 0x44);
    second = _mm512_shuffle_i64x2(lo, hi, 0xee);
}

// Q5_K's values 64j .. 64j + 63 from their nibbles: bit g of qh[l] is the fifth bit of value 32g + l
// (bit_planes picks bits 2j and 2j + 1).
inline __m512i q5_k_codes(const std::uint8_t* qh, int j, __m512i nibbles) {
    return _mm512_mask_add_epi8(nibbles, bit_planes(qh, j), nibbles, _mm512_set1_epi8(16));
}

// Values 128h .. 128h + 127 of a Q6_K super-block as unsigned codes q + 32 (0..63) in value order, 64 a
// vector: ql's 64 bytes hold values 0-63 of the half in their low nibbles and 64-127 in their high ones;
// each value's two top bits sit in qh (32 bytes, read once at the shift its quarter needs: quarters 0, 1
// take bits 0-1, 2-3, moved up to bits 4-5; quarters 2, 3 bits 4-5, 6-7).
inline void q6_codes(const BlockQ6_K& b, int h, __m512i& first, __m512i& second) {
    const __m512i nibble = _mm512_set1_epi8(0x0f), top = _mm512_set1_epi8(0x30);
    const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h)));
    first = _mm512_or_si512(_mm512_and_si512(ql, nibble), _mm512_and_si512(_mm512_sllv_epi16(qh, up), top));
    second = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nibble), _mm512_and_si512(_mm512_srlv_epi16(qh, down), top));
}

// A Q5_0 block's 32 codes q (0..31) in value order, the fifth bits spread to bytes by a mask move.
inline __m256i q5_0_codes(const std::byte* blk) {
    const auto& b = *reinterpret_cast<const BlockQ5_0*>(blk);
    const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m256i low = _mm256_setr_m128i(_mm_and_si128(qs, nibble), _mm_and_si128(_mm_srli_epi16(qs, 4), nibble));
    std::uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    return _mm256_or_si256(low, _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)));
}

// Shared by the K-quant kernels: a step is one super-block, read in place.
template <DType W>
struct KQuantStep : BlockStepKernel<Q8KRows, kQK_K, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    using Acc = __m512;
    static Acc zero() { return _mm512_setzero_ps(); }
    static const BlockQ8_K* load_x(const Q8KRows& in, int t, int s) { return in.row(t) + s; }
    static float reduce(Acc a) { return simd::hsum(a); }
};

}  // namespace avx512_blocks

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins, codes as k4_nibbles (and q5_k_codes) read them.
template <DType W>
    requires(W == DType::Q4_K || W == DType::Q5_K)
struct Kernel<isa::Avx512, W> : avx512_blocks::KQuantStep<W> {
    using Acc = __m512;
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        using namespace avx512_blocks;
        const auto& b = *reinterpret_cast<const std::conditional_t<W == DType::Q4_K, BlockQ4_K, BlockQ5_K>*>(block);
        // Values 64j .. 64j + 63 with their fifth bits (Q5_K), added where they are used.
        const auto codes = [&](__m512i nibbles, int j) {
            if constexpr (W == DType::Q4_K) return nibbles;
            else return q5_k_codes(b.qh, j, nibbles);
        };
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_and_mins(b.scales));  // words 0-7 scales, 8-15 mins
        const __m512i scales = _mm512_zextsi256_si512(sm);
        // sum over sub-blocks of min * (its two 16-value activation sums): min j against bsums 2j and 2j + 1.
        const __m256i mins = _mm256_permutexvar_epi16(_mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), sm);
        const __m256i min_sums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums)), mins);

        __m512i sum = _mm512_setzero_si512();
        FORGE_UNROLL for (int k = 0; k < 2; ++k) {
            __m512i first, second;
            k4_nibbles(b.qs, k, first, second);
            if (k == 0) {
                sum = scaled_pairs(sum, codes(first, 0), x->qs, scale_words<0, 32>(scales));
                sum = scaled_pairs(sum, codes(second, 1), x->qs + 64, scale_words<2, 32>(scales));
            } else {
                sum = scaled_pairs(sum, codes(first, 2), x->qs + 128, scale_words<4, 32>(scales));
                sum = scaled_pairs(sum, codes(second, 3), x->qs + 192, scale_words<6, 32>(scales));
            }
        }
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(f16_to_f32(b.d) * x->d), a);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(min_sums)), _mm512_set1_ps(-(f16_to_f32(b.dmin) * x->d)), a);
    }
};

// Q6_K: 16 sub-blocks of 16 with int8 scales, codes q + 32 in 0..63 as q6_codes reads them.
template <>
struct Kernel<isa::Avx512, DType::Q6_K> : avx512_blocks::KQuantStep<DType::Q6_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        using namespace avx512_blocks;
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
        const __m512i scales = _mm512_zextsi256_si512(sc);
        // The codes' surplus: 32 * sum over sub-blocks of scale * activation sum.
        const __m256i surplus = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums)), sc);

        __m512i sum = _mm512_setzero_si512();
        FORGE_UNROLL for (int h = 0; h < 2; ++h) {
            __m512i first, second;
            q6_codes(b, h, first, second);
            if (h == 0) {
                sum = scaled_pairs(sum, first, x->qs, scale_words<0, 16>(scales));
                sum = scaled_pairs(sum, second, x->qs + 64, scale_words<4, 16>(scales));
            } else {
                sum = scaled_pairs(sum, first, x->qs + 128, scale_words<8, 16>(scales));
                sum = scaled_pairs(sum, second, x->qs + 192, scale_words<12, 16>(scales));
            }
        }
        sum = _mm512_sub_epi32(sum, _mm512_slli_epi32(_mm512_zextsi256_si512(surplus), 5));
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(f16_to_f32(b.d) * x->d), a);
    }
};

// Q2_K / Q3_K: 16 sub-blocks of 16, codes in 2-bit planes. Q2_K: 4-bit scales and mins (the mins against the
// activations' block sums). Q3_K: 6-bit scales less 32, and a third bit in hmask that, clear, takes 4 off: read
// as unsigned q + 4, whose surplus 4 * sum(x) comes off through the block sums.
template <DType W>
    requires(W == DType::Q2_K || W == DType::Q3_K)
struct Kernel<isa::Avx512, W> : avx512_blocks::KQuantStep<W> {
    using Acc = __m512;
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        using namespace avx512_blocks;
        const auto& b = *reinterpret_cast<const std::conditional_t<W == DType::Q2_K, BlockQ2_K, BlockQ3_K>*>(block);
        __m256i sc;
        if constexpr (W == DType::Q2_K) {
            sc = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)), _mm_set1_epi8(0x0f)));
        } else {
            // The 12 packed bytes to 16 six-bit scales, one byte each, as ggml unpacks them (k3_scales), less 32.
            std::uint32_t u[4];
            std::memcpy(u, b.scales, 12);
            const std::uint32_t top = u[2];
            u[2] = ((u[0] >> 4) & 0x0f0f0f0f) | (((top >> 4) & 0x03030303) << 4);
            u[3] = ((u[1] >> 4) & 0x0f0f0f0f) | (((top >> 6) & 0x03030303) << 4);
            u[0] = (u[0] & 0x0f0f0f0f) | ((top & 0x03030303) << 4);
            u[1] = (u[1] & 0x0f0f0f0f) | (((top >> 2) & 0x03030303) << 4);
            sc = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u))), _mm256_set1_epi16(32));
        }
        const __m512i scales = _mm512_zextsi256_si512(sc);
        const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums));
        __m512i sum = _mm512_setzero_si512();
        FORGE_UNROLL for (int j = 0; j < 4; ++j) {
            __m512i q = two_bit_codes(b.qs, j);
            if constexpr (W == DType::Q3_K) q = _mm512_mask_add_epi8(q, bit_planes(b.hmask, j), q, _mm512_set1_epi8(4));
            const std::int8_t* xq = x->qs + 64 * j;
            if (j == 0) sum = scaled_pairs(sum, q, xq, scale_words<0, 16>(scales));
            if (j == 1) sum = scaled_pairs(sum, q, xq, scale_words<4, 16>(scales));
            if (j == 2) sum = scaled_pairs(sum, q, xq, scale_words<8, 16>(scales));
            if (j == 3) sum = scaled_pairs(sum, q, xq, scale_words<12, 16>(scales));
        }
        if constexpr (W == DType::Q2_K) {
            const __m256i mins = _mm256_cvtepu8_epi16(_mm_srli_epi16(_mm_andnot_si128(_mm_set1_epi8(0x0f), _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales))), 4));
            const __m256i min_sums = _mm256_madd_epi16(bsums, mins);
            a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(f16_to_f32(b.d) * x->d), a);
            a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(min_sums)), _mm512_set1_ps(-(f16_to_f32(b.dmin) * x->d)), a);
        } else {
            const __m256i surplus = _mm256_madd_epi16(bsums, sc);
            sum = _mm512_sub_epi32(sum, _mm512_slli_epi32(_mm512_zextsi256_si512(surplus), 2));
            a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(f16_to_f32(b.d) * x->d), a);
        }
    }
};

// Q5_0 reads the Q8_0 kernel's activations (two blocks a step, codes w + 128): its codes q - 16 become
// q + 112, the fifth bits spread to bytes by a mask move.
template <>
struct Kernel<isa::Avx512, DType::Q5_0> : Kernel<isa::Avx512, DType::Q8_0> {
    static constexpr bool kGenericLength = true;
    static __m256i block_codes(const std::byte* blk) { return _mm256_add_epi8(avx512_blocks::q5_0_codes(blk), _mm256_set1_epi8(112)); }
    static WVec load_w(const std::byte* row, int s, int cols) {
        const std::byte* b0 = row + std::size_t(2 * s) * sizeof(BlockQ5_0);
        const std::byte* b1 = b0 + sizeof(BlockQ5_0);
        const bool two = 2 * s + 1 < cols / 32;  // an odd block count leaves the last step half empty
        const __m512i q = _mm512_inserti64x4(_mm512_zextsi256_si512(block_codes(b0)), two ? block_codes(b1) : _mm256_setzero_si256(), 1);
        const std::uint32_t h = std::uint32_t(load_u16(b0)) | (two ? std::uint32_t(load_u16(b1)) << 16 : 0u);
        const __m512 d2 = _mm512_zextps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(h))));
        return {q, _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), d2)};
    }
};

}  // namespace forge::cpu
#endif
