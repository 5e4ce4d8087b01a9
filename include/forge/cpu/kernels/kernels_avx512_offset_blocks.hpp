#pragma once
// AVX-512 VNNI micro-kernel for Q4_1 and Q5_1 (blocks of 32 with a scale and an offset m) against Q8_1
// activations: two blocks a step, the weight codes unsigned as stored, so vpdpbusd gives each block's exact
// dot in its eight int32 lanes; acc += (d_w * d_x) * dot there and m * s_x (s_x = d_x * sum of the codes) in
// the block's first lane: ggml's generic vec_dot terms, summed in another order.
#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/simd/hsum.hpp"

#if FORGE_HAVE_AVX512
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "forge/cpu/simd/x86.hpp"
#include "forge/quant/q4_1.hpp"
#include "forge/quant/q5.hpp"
#include "forge/quant/q8_1.hpp"

namespace forge::cpu {

template <DType W>
    requires(W == DType::Q4_1 || W == DType::Q5_1)
struct Kernel<isa::Avx512, W> {
    static constexpr int kStep = 64, kRows = 4, kTokens = 4;
    static constexpr bool kGenericLength = true;  // see BlockStepKernel
    static constexpr BlockLayout kLayout{};
    using Input = Q81Rows;
    using Acc = __m512;
    using Block = std::conditional_t<W == DType::Q4_1, BlockQ4_1, BlockQ5_1>;
    struct WVec {
        __m512i q;  // 64 codes, in value order
        __m512 d;   // each lane's block scale
        __m512 m;   // each block's offset in its first lane, zeros elsewhere
    };
    struct XVec {
        __m512i q;
        __m512 d, s;  // each lane's block scale; each block's scaled sum in its first lane
    };

    static int steps(int cols) { return (cols / 32 + 1) / 2; }
    static Acc zero() { return _mm512_setzero_ps(); }
    // Two f16 values over lanes 0-7 and 8-15, or (first_lanes) in lanes 0 and 8 alone.
    static __m512 spread(std::uint16_t a, std::uint16_t b, bool first_lanes = false) {
        const __m512 v = _mm512_zextps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(std::uint32_t(a) | std::uint32_t(b) << 16))));
        const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        return first_lanes ? _mm512_maskz_permutexvar_ps(0x0101, idx, v) : _mm512_permutexvar_ps(idx, v);
    }
    static __m512i halves(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }
    static __m256i block_codes(const Block& b) {
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
        const __m128i nibble = _mm_set1_epi8(0x0f);
        const __m256i low = _mm256_setr_m128i(_mm_and_si128(qs, nibble), _mm_and_si128(_mm_srli_epi16(qs, 4), nibble));
        if constexpr (W == DType::Q4_1) {
            return low;
        } else {
            std::uint32_t qh;
            std::memcpy(&qh, b.qh, 4);
            return _mm256_or_si256(low, _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(16)));
        }
    }
    static WVec load_w(const std::byte* row, int s, int cols) {
        const auto* b = reinterpret_cast<const Block*>(row) + 2 * s;
        const bool two = 2 * s + 1 < cols / 32;  // an odd block count leaves the last step half empty
        const __m512i q = halves(block_codes(b[0]), two ? block_codes(b[1]) : _mm256_setzero_si256());
        return {q, spread(b[0].d, two ? b[1].d : 0), spread(b[0].m, two ? b[1].m : 0, true)};
    }
    static XVec load_x(const Input& in, int t, int s) {
        const BlockQ8_1* x = in.row(t) + 2 * s;
        const bool two = 2 * s + 1 < in.blocks();
        const auto codes = [](const BlockQ8_1& blk) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs)); };
        return {halves(codes(x[0]), two ? codes(x[1]) : _mm256_setzero_si256()), spread(x[0].d, two ? x[1].d : 0),
                spread(x[0].s, two ? x[1].s : 0, true)};
    }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.q, x.q);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(w.d, x.d), a);
        a = _mm512_fmadd_ps(w.m, x.s, a);
    }
    static float reduce(Acc a) { return simd::hsum(a); }
};

}  // namespace forge::cpu
#endif
