#pragma once
// AVX2 micro-kernels for the block types most files are made of: Q4_K, Q5_K and Q6_K against Q8_K activations, and
// Q5_0; the other block types run the portable kernels. As in the AVX-512 ones (kernels_avx512_blocks.hpp), a step is one
// super-block decoded where it is used, its codes unsigned (Q6_K: q + 32, the surplus taken off through the
// activations' block sums): vpmaddubsw against the activation codes, vpmaddwd by the sub-block's scale, the same
// exact integer sums as the portable kernels. Q5_0 takes the Q8_0 kernel's multiply.
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

// sum += (32 unsigned codes . 32 activation codes) pairwise, each pair times its word of `scales`.
inline __m256i scaled_pairs(__m256i sum, __m256i codes, const std::int8_t* x, __m256i scales) {
    const __m256i pairs = _mm256_maddubs_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
    return _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, scales));
}

template <DType W>
struct KQuantStep : BlockStepKernel<Q8KRows, kQK_K, dtype_info(W).block_bytes> {
    static constexpr BlockLayout kLayout{};
    using Acc = __m256;
    static Acc zero() { return _mm256_setzero_ps(); }
    static const BlockQ8_K* load_x(const Q8KRows& in, int t, int s) { return in.row(t) + s; }
    static float reduce(Acc a) { return simd::hsum(a); }
};

}  // namespace avx2_blocks

// Q4_K / Q5_K: each 32 bytes of qs hold sub-blocks 2g (low nibbles) and 2g + 1 (high); Q5_K's fifth bit of value
// 32s + l is bit s of qh[l].
template <DType W>
    requires(W == DType::Q4_K || W == DType::Q5_K)
struct Kernel<isa::Avx2, W> : avx2_blocks::KQuantStep<W> {
    using Acc = __m256;
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const std::conditional_t<W == DType::Q4_K, BlockQ4_K, BlockQ5_K>*>(block);
        std::uint8_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) k4_scale_min(j, b.scales, sc[j], m[j]);
        const __m256i mins = _mm256_setr_epi16(m[0], m[0], m[1], m[1], m[2], m[2], m[3], m[3], m[4], m[4], m[5], m[5], m[6], m[6], m[7], m[7]);
        const __m256i min_sums = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x->bsums)), mins);
        const __m256i nibble = _mm256_set1_epi8(0x0f);
        __m256i qh{};
        if constexpr (W == DType::Q5_K) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
        // Sub-block s's codes with its fifth bits (Q5_K).
        const auto codes = [&](__m256i nibbles, int s) {
            if constexpr (W == DType::Q4_K) return nibbles;
            else return _mm256_or_si256(nibbles, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(1)), 4));
        };
        __m256i sum = _mm256_setzero_si256();
        FORGE_UNROLL for (int g = 0; g < 4; ++g) {
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * g));
            sum = avx2_blocks::scaled_pairs(sum, codes(_mm256_and_si256(q, nibble), 2 * g), x->qs + 64 * g, _mm256_set1_epi16(sc[2 * g]));
            sum = avx2_blocks::scaled_pairs(sum, codes(_mm256_and_si256(_mm256_srli_epi16(q, 4), nibble), 2 * g + 1), x->qs + 64 * g + 32,
                                            _mm256_set1_epi16(sc[2 * g + 1]));
        }
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(f16_to_f32(b.d) * x->d), a);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_sums), _mm256_set1_ps(-(f16_to_f32(b.dmin) * x->d)), a);
    }
};

// Q6_K: per half of 128 values, ql's 64 bytes give values 0-63 (low nibbles) and 64-127 (high), qh's 32 bytes
// each value's top two bits at the shift its quarter of 32 needs.
template <>
struct Kernel<isa::Avx2, DType::Q6_K> : avx2_blocks::KQuantStep<DType::Q6_K> {
    static void madd(Acc& a, const std::byte* block, const BlockQ8_K* x) {
        const auto& b = *reinterpret_cast<const BlockQ6_K*>(block);
        std::int32_t surplus = 0;  // 32 * sum over sub-blocks of scale * activation sum
        for (int j = 0; j < 16; ++j) surplus += std::int32_t(b.scales[j]) * x->bsums[j];
        const __m256i nibble = _mm256_set1_epi8(0x0f), top = _mm256_set1_epi8(0x30);
        // Sub-blocks s and s + 1 (the two halves of 32 values): their scales over words 0-7 and 8-15.
        const auto scales = [&](int s) { return _mm256_setr_m128i(_mm_set1_epi16(b.scales[s]), _mm_set1_epi16(b.scales[s + 1])); };
        __m256i sum = _mm256_setzero_si256();
        FORGE_UNROLL for (int h = 0; h < 2; ++h) {
            const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), top)),
                _mm256_or_si256(_mm256_and_si256(l1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), top)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), nibble), _mm256_and_si256(qh, top)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), nibble), _mm256_and_si256(_mm256_srli_epi16(qh, 2), top)),
            };
            FORGE_UNROLL for (int k = 0; k < 4; ++k)
                sum = avx2_blocks::scaled_pairs(sum, q[k], x->qs + 128 * h + 32 * k, scales(8 * h + 2 * k));
        }
        const float d = f16_to_f32(b.d) * x->d;
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sum, _mm256_setr_epi32(32 * surplus, 0, 0, 0, 0, 0, 0, 0))), _mm256_set1_ps(d), a);
    }
};

// Q5_0 (published files put it where a row is not a whole number of super-blocks: Qwen2.5-0.5B's 896) reads
// the Q8_0 kernel's activations and takes its multiply: its codes q - 16 are signed bytes as Q8_0's are. The
// fifth bits spread to bytes by a byte shuffle and a compare.
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
