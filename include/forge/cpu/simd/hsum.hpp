#pragma once
// Horizontal sums of x86 float vectors in a fixed order (so results are reproducible), built from
// shuffles. GCC 12's intrinsics that merge into _mm*_undefined_* (_mm512_reduce_add_ps, the unmasked
// extracts) trip -Wuninitialized, so the zero-masked forms are used.
#include "forge/cpu/simd/isa.hpp"

#if FORGE_HAVE_AVX512 || FORGE_HAVE_AVX2
#include "forge/cpu/simd/x86.hpp"

namespace forge::cpu::simd {

inline float hsum(__m128 q) {
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

inline float hsum(__m256 a) { return hsum(_mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1))); }

#if FORGE_HAVE_AVX512
inline float hsum(__m512 a) {
    const __m256d hi = _mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(a), 1);
    return hsum(_mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(hi)));
}

// The sums of four vectors, in that order: one reduction for all four (13 instructions where four
// hsum() take 32). Each sum is formed from its own vector's lanes only, in a fixed order.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    // [a, b, a, b] and [c, d, c, d] partial sums in each 128-bit lane, then [a, b, c, d], then across lanes.
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 u = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                                   _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(u), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}
#endif

}  // namespace forge::cpu::simd
#endif
