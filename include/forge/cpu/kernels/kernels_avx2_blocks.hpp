#pragma once
// AVX2 micro-kernels for the block types published files are mostly made of: Q4_K and Q6_K against Q8_K
// activations, Q5_0 against the Q8_0 kernel's activation rows. Each computes exactly the integer sums of the
// portable kernel (kernels_portable.hpp), so the results differ from it only in float rounding.
//
// K-quants: a step is one 256-value super-block. Codes are made unsigned (Q6_K: q + 32, whose surplus
// 32 * sum(x) comes off through the activations' block sums), multiplied with the activation codes by
// vpmaddubsw into 16-bit pairs (at most 63 * 127 * 2, no saturation), and vpmaddwd multiplies the pairs by
// their sub-block's scale into int32 lanes: the exact scaled block dot.
#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_avx2.hpp"
#include "forge/cpu/kernels/kernels_portable.hpp"
#include "forge/cpu/simd/hsum.hpp"

#if FORGE_HAVE_AVX2
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forge/cpu/simd/x86.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q5.hpp"

namespace forge::cpu {

namespace avx2_blocks {

// sum += (unsigned codes . 32 activation codes) pairwise, times each pair's 16-bit scale.
inline __m256i scaled_pairs(__m256i sum, __m256i codes, const std::int8_t* x, __m256i scales) {
    return _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))), scales));
}

// Shared by the K-quant kernels: a step is one super-block, read in place.
template <DType W>
struct KQuantStep : BlockStepKernel<Q8KRows, kQK_K, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    using Acc = __m256;
    static Acc zero() { return _mm256_setzero_ps(); }
    static const BlockQ8_K* load_x(const Q8KRows& in, int t, int s) { return in.row(t) + s; }
    static float reduce(Acc a) { return simd::hsum(a); }
};

}  // namespace avx2_blocks

// Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins; each 32 bytes of qs hold sub-block 2k in their low
// nibbles and 2k + 1 in their high ones.
template <>
struct Kernel<isa::Avx2, DType::Q4_K> : avx2_blocks::KQuantStep<DType::Q4_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const BlockQ4_K*>(block);
        // The 12 packed bytes to 8 scales (bytes 0-7) then 8 mins (bytes 8-15).
        std::uint8_t sm[16];
        for (int j = 0; j < 8; ++j) k4_scale_min(j, b.scales, sm[j], sm[8 + j]);
        // min j against the activations' sums 2j and 2j + 1.
        const __m128i mins = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sm)),
                                              _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15));
        const __m256i min_sums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums)), _mm256_cvtepu8_epi16(mins));

        const __m256i nibble = _mm256_set1_epi8(0x0f);
        __m256i sum = _mm256_setzero_si256();
        FORGE_UNROLL for (int k = 0; k < 4; ++k) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * k));
            sum = avx2_blocks::scaled_pairs(sum, _mm256_and_si256(q, nibble), x->qs + 64 * k, _mm256_set1_epi16(sm[2 * k]));
            sum = avx2_blocks::scaled_pairs(sum, _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble), x->qs + 64 * k + 32,
                                            _mm256_set1_epi16(sm[2 * k + 1]));
        }
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(f16_to_f32(b.d) * x->d), a);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_sums), _mm256_set1_ps(-(f16_to_f32(b.dmin) * x->d)), a);
    }
};

// Q6_K: 16 sub-blocks of 16 with int8 scales, codes q + 32 in 0..63. Per half of 128 values, ql's two 32-byte
// rows hold quarters 0 and 1 in their low nibbles and 2 and 3 in their high ones; each value's two top bits
// sit in qh (32 bytes), quarter k's at bits 2k, 2k + 1.
template <>
struct Kernel<isa::Avx2, DType::Q6_K> : avx2_blocks::KQuantStep<DType::Q6_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
        // The codes' surplus: 32 * sum over sub-blocks of scale * activation sum.
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
        const __m256i surplus = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums)), sc);

        const __m256i nibble = _mm256_set1_epi8(0x0f), top = _mm256_set1_epi8(0x30);
        // A quarter's 32 codes are two sub-blocks: the low 128-bit lane's pairs take the first's scale.
        const auto scales = [&](int j) { return _mm256_setr_m128i(_mm_set1_epi16(b.scales[j]), _mm_set1_epi16(b.scales[j + 1])); };
        __m256i sum = _mm256_setzero_si256();
        FORGE_UNROLL for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
            const __m256i q0 = _mm256_or_si256(_mm256_and_si256(ql0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top));
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(ql1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble), _mm256_and_si256(qh, top));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), top));
            const std::int8_t* xh = x->qs + 128 * h;
            sum = avx2_blocks::scaled_pairs(sum, q0, xh, scales(8 * h));
            sum = avx2_blocks::scaled_pairs(sum, q1, xh + 32, scales(8 * h + 2));
            sum = avx2_blocks::scaled_pairs(sum, q2, xh + 64, scales(8 * h + 4));
            sum = avx2_blocks::scaled_pairs(sum, q3, xh + 96, scales(8 * h + 6));
        }
        sum = _mm256_sub_epi32(sum, _mm256_slli_epi32(surplus, 5));
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(f16_to_f32(b.d) * x->d), a);
    }
};

// Q5_0 reads the Q8_0 kernel's activations and takes its multiply: its codes q - 16 are signed bytes as Q8_0's
// are. The fifth bits spread to bytes by a byte shuffle and a compare.
template <>
struct Kernel<isa::Avx2, DType::Q5_0> : Kernel<isa::Avx2, DType::Q8_0> {
    static constexpr bool kGenericLength = true;
    static WVec load_w(const std::byte* row, int s, int) {
        const auto& b = *reinterpret_cast<const BlockQ5_0*>(row + std::size_t(s) * sizeof(BlockQ5_0));
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
        const __m128i nibble = _mm_set1_epi8(0x0f);
        const __m256i low = _mm256_setr_m128i(_mm_and_si128(qs, nibble), _mm_and_si128(_mm_srli_epi16(qs, 4), nibble));
        std::int32_t qh;
        std::memcpy(&qh, b.qh, 4);
        // Byte j gets qh's byte j / 8, then keeps bit j % 8.
        const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), _mm256_setr_epi64x(0, 0x0101010101010101ll,
                                                                                              0x0202020202020202ll, 0x0303030303030303ll));
        const __m256i bit = _mm256_set1_epi64x(std::int64_t(0x8040201008040201ull));
        const __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
        return {_mm256_sub_epi8(_mm256_or_si256(low, fifth), _mm256_set1_epi8(16)), f16_to_f32(b.d)};
    }
};

}  // namespace forge::cpu
#endif
