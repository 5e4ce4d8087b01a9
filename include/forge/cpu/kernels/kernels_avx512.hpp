#pragma once
// AVX-512 micro-kernels. Quantized weights use VNNI's vpdpbusd (u8 x s8 -> s32, 64 products per
// instruction, two blocks per step): the weight codes are made unsigned by an offset (Q8_0: w ^ 0x80 =
// w + 128; Q4_0: the raw nibble, i.e. w + 8) and the activation rows carry the offset's correction
// (-offset * block sum, spread over the block's eight int32 lanes) as the accumulator's starting value,
// so the integer dot is exact with one instruction. F32 / F16 weights use FMA on sixteen floats.
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/simd/hsum.hpp"

#if FORGE_HAVE_AVX512
#include "forge/cpu/simd/x86.hpp"

#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

template <DType W>
    requires(W == DType::F32 || W == DType::F16)
struct Kernel<isa::Avx512, W> {
    static constexpr int kStep = 16, kRows = 4, kTokens = 4;
    using Input = FloatRows;
    using Acc = __m512;

    static int steps(int cols) { return (cols + kStep - 1) / kStep; }
    static Acc zero() { return _mm512_setzero_ps(); }
    // A partial last step is read with a mask: masked-off lanes are neither read nor faulted on.
    static __mmask16 mask(int cols, int s) {
        const int n = cols - s * kStep;
        return n >= kStep ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
    }
    static __m512 load_w(const std::byte* row, int s, int cols) {
        const __mmask16 m = mask(cols, s);
        if constexpr (W == DType::F32) return _mm512_maskz_loadu_ps(m, row + std::size_t(s) * kStep * 4);
        else return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + std::size_t(s) * kStep * 2));
    }
    static __m512 load_x(const Input& in, int t, int s) {
        return _mm512_maskz_loadu_ps(mask(in.cols, s), in.row(t) + s * kStep);
    }
    static void madd(Acc& a, __m512 w, __m512 x) { a = _mm512_fmadd_ps(w, x, a); }
    static float reduce(Acc a) { return simd::hsum(a); }
};

template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct Kernel<isa::Avx512, W> {
    static constexpr int kStep = 64, kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{.step_blocks = 2, .interleave = W == DType::Q4_0, .offset = W == DType::Q8_0 ? 128 : 8};
    using Input = Q8Rows;
    using Acc = __m512;
    struct WVec {
        __m512i q;  // 64 unsigned codes in kLayout's order
        __m512 d;   // each int32 lane's block scale
    };
    struct XVec {
        __m512i q, corr;
        __m512 d;
    };
    static constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);

    static int steps(int cols) { return (cols / 32 + 1) / 2; }
    static Acc zero() { return _mm512_setzero_ps(); }

    static WVec load_w(const std::byte* row, int s, int cols) {
        const std::byte* b0 = row + std::size_t(2 * s) * kBlockBytes;
        const std::byte* b1 = b0 + kBlockBytes;
        const bool two = 2 * s + 1 < cols / 32;  // an odd block count leaves the last step half empty
        __m512i q;
        if constexpr (W == DType::Q8_0) {
            const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
            const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2)) : _mm256_setzero_si256();
            q = _mm512_xor_si512(_mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1), _mm512_set1_epi8(char(0x80)));
        } else {
            const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 2));
            const __m128i hi = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 2)) : _mm_setzero_si128();
            const __m256i v = _mm256_inserti128_si256(_mm256_zextsi128_si256(lo), hi, 1);
            const __m512i both = _mm512_inserti64x4(_mm512_zextsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
            q = _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
        }
        const std::uint32_t h = std::uint32_t(load_u16(b0)) | (two ? std::uint32_t(load_u16(b1)) << 16 : 0u);
        const __m512 d2 = _mm512_zextps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(h))));
        return {q, _mm512_permutexvar_ps(lane_blocks(), d2)};
    }
    static XVec load_x(const Input& in, int t, int s) {
        return {_mm512_load_si512(in.qs(t, s)), _mm512_load_si512(in.corr(t, s)), _mm512_load_ps(in.d(t, s))};
    }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        const __m512i dot = _mm512_dpbusd_epi32(x.corr, w.q, x.q);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(w.d, x.d), a);
    }
    static float reduce(Acc a) { return simd::hsum(a); }

private:
    // Which of the step's two blocks each int32 lane holds.
    static __m512i lane_blocks() {
        constexpr Q8Layout L = kLayout;
        return _mm512_setr_epi32(L.block_of(0), L.block_of(4), L.block_of(8), L.block_of(12), L.block_of(16),
                                 L.block_of(20), L.block_of(24), L.block_of(28), L.block_of(32), L.block_of(36),
                                 L.block_of(40), L.block_of(44), L.block_of(48), L.block_of(52), L.block_of(56),
                                 L.block_of(60));
    }
};

}  // namespace forge::cpu
#endif
