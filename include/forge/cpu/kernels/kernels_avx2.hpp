#pragma once
// AVX2 micro-kernels, one block per step. Without VNNI the integer dot is maddubs (u8 x s8 -> s16 pairs)
// then madd with ones (-> s32). Q8_0 moves the weight's sign onto the activation (|w| x sign(x, w)), which
// keeps maddubs' s16 pair sums from saturating; Q4_0 uses the raw nibble (w + 8) and the activation rows'
// correction (-8 x block sum over the block's eight lanes).
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/simd/hsum.hpp"

#if FORGE_HAVE_AVX2
#include "forge/cpu/simd/x86.hpp"

#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

template <DType W>
    requires(W == DType::F32 || W == DType::F16)
struct Kernel<isa::Avx2, W> {
    static constexpr int kStep = 8, kRows = 4, kTokens = 3;
    using Input = FloatRows;
    using Acc = __m256;

    static int steps(int cols) { return (cols + kStep - 1) / kStep; }
    static Acc zero() { return _mm256_setzero_ps(); }
    static __m256 load_w(const std::byte* row, int s, int cols) {
        constexpr std::size_t kSize = W == DType::F32 ? 4 : 2;
        const std::byte* p = row + std::size_t(s) * kStep * kSize;
        alignas(32) std::byte tail[kStep * kSize] = {};
        if (cols - s * kStep < kStep) {  // the row's partial last step, zero-filled
            std::memcpy(tail, p, std::size_t(cols - s * kStep) * kSize);
            p = tail;
        }
        if constexpr (W == DType::F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
        else return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static __m256 load_x(const Input& in, int t, int s) {
        const int n = in.cols - s * kStep;
        const float* p = in.row(t) + s * kStep;
        if (n >= kStep) return _mm256_loadu_ps(p);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
    }
    static void madd(Acc& a, __m256 w, __m256 x) { a = _mm256_fmadd_ps(w, x, a); }
    static float reduce(Acc a) { return simd::hsum(a); }
};

template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct Kernel<isa::Avx2, W> {
    static constexpr int kStep = 32, kRows = 4, kTokens = 3;
    static constexpr Q8Layout kLayout{.step_blocks = 1, .offset = W == DType::Q8_0 ? 0 : 8};
    using Input = Q8Rows;
    using Acc = __m256;
    struct WVec {
        __m256i q;
        float d;
    };
    struct XVec {
        __m256i q, corr;
        __m256 d;
    };
    static constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);

    static int steps(int cols) { return cols / 32; }
    static Acc zero() { return _mm256_setzero_ps(); }
    static WVec load_w(const std::byte* row, int s, int) {
        const std::byte* b = row + std::size_t(s) * kBlockBytes;
        __m256i q;
        if constexpr (W == DType::Q8_0) {
            q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
        } else {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
            q = _mm256_and_si256(_mm256_inserti128_si256(_mm256_zextsi128_si256(v), _mm_srli_epi16(v, 4), 1),
                                 _mm256_set1_epi8(0x0f));
        }
        return {q, f16_to_f32(load_u16(b))};
    }
    static XVec load_x(const Input& in, int t, int s) {
        return {_mm256_load_si256(reinterpret_cast<const __m256i*>(in.qs(t, s))),
                _mm256_load_si256(reinterpret_cast<const __m256i*>(in.corr(t, s))), _mm256_load_ps(in.d(t, s))};
    }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        __m256i pairs;
        if constexpr (W == DType::Q8_0) pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w.q, w.q), _mm256_sign_epi8(x.q, w.q));
        else pairs = _mm256_maddubs_epi16(w.q, x.q);
        const __m256i dot = _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), x.corr);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(_mm256_set1_ps(w.d), x.d), a);
    }
    static float reduce(Acc a) { return simd::hsum(a); }
};

}  // namespace forge::cpu
#endif
