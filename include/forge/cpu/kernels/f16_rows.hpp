#pragma once
// The vector operations on f16 KV-cache rows: storing a float row as f16 (rounded to nearest even, as
// f32_to_f16), and what attention does with them, a dot product with a float query and a scaled
// accumulation into a float output; with hardware f16 conversion where the target has it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "forge/core/half.hpp"
#include "forge/cpu/simd/hsum.hpp"
#include "forge/cpu/simd/isa.hpp"

#if FORGE_HAVE_AVX512 || FORGE_HAVE_AVX2
#include "forge/cpu/simd/x86.hpp"
#elif FORGE_HAVE_NEON
#include <arm_neon.h>
#endif

namespace forge::cpu {

template <class Isa>
struct F16Rows {
    static void store(const float* x, std::uint16_t* out, int n) {
        for (int i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
    }
    static float dot(const float* q, const std::uint16_t* k, int n) {
        float acc[4] = {};
        for (int i = 0; i < n; i += 4)
            for (int j = 0; j < 4 && i + j < n; ++j) acc[j] += q[i + j] * f16_to_f32(k[i + j]);
        return (acc[0] + acc[2]) + (acc[1] + acc[3]);
    }
    static void axpy(float a, const std::uint16_t* v, float* out, int n) {
        for (int i = 0; i < n; ++i) out[i] += a * f16_to_f32(v[i]);
    }
};

#if FORGE_HAVE_AVX512
template <>
struct F16Rows<isa::Avx512> {
    static __mmask16 mask(int n, int i) { return n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1); }
    static void store(const float* x, std::uint16_t* out, int n) {
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT));
        }
    }
    static float dot(const float* q, const std::uint16_t* k, int n) {
        __m512 acc = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + i)), acc);
        }
        // Reduced as dot4 reduces each of its rows, so a score has the same bits whichever form made it.
        const __m512 z = _mm512_setzero_ps();
        return _mm_cvtss_f32(simd::hsum4(acc, z, z, z));
    }
    static void axpy(float a, const std::uint16_t* v, float* out, int n) {
        const __m512 av = _mm512_set1_ps(a);
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            const __m512 o = _mm512_fmadd_ps(av, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + i)), _mm512_maskz_loadu_ps(m, out + i));
            _mm512_mask_storeu_ps(out + i, m, o);
        }
    }
    // Four rows `stride` values apart at once: one reduction for four dots, one pass over `out` for four
    // accumulations (the per-row forms spend most of their time there at head_dim 64-128).
    static void dot4(const float* q, const std::uint16_t* k, std::size_t stride, int n, float* out) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
            for (int r = 0; r < 4; ++r)
                acc[r] = _mm512_fmadd_ps(qv, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + std::size_t(r) * stride + std::size_t(i))), acc[r]);
        }
        _mm_storeu_ps(out, simd::hsum4(acc[0], acc[1], acc[2], acc[3]));
    }
    // Four queries (`q_stride` apart) dotted with one row: per query, the operations dot4 does per row.
    static void dot_queries4(const float* q, std::size_t q_stride, const std::uint16_t* k, int n, float* out) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            const __m512 kv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + i));
            for (int r = 0; r < 4; ++r) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + std::size_t(r) * q_stride + std::size_t(i)), kv, acc[r]);
        }
        _mm_storeu_ps(out, simd::hsum4(acc[0], acc[1], acc[2], acc[3]));
    }
    // Four queries dotted with four rows (`stride` apart), each row converted once: query r's four dots
    // go to out[r * out_stride ...+ 4), each formed exactly as dot4 forms it. The loops over the 4 x 4
    // sums are unrolled by pragma: GCC keeps such arrays in registers only when it unrolls them early.
    static void dot4_queries4(const float* q, std::size_t q_stride, const std::uint16_t* k, std::size_t stride, int n, float* out,
                              std::size_t out_stride) {
        __m512 acc[4][4];
        #pragma GCC unroll 16
        for (auto& r : acc)
            #pragma GCC unroll 16
            for (auto& x : r) x = _mm512_setzero_ps();
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            __m512 kv[4];
            #pragma GCC unroll 16
            for (int j = 0; j < 4; ++j) kv[j] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + std::size_t(j) * stride + std::size_t(i)));
            #pragma GCC unroll 16
            for (int r = 0; r < 4; ++r) {
                const __m512 qv = _mm512_maskz_loadu_ps(m, q + std::size_t(r) * q_stride + std::size_t(i));
                #pragma GCC unroll 16
                for (int j = 0; j < 4; ++j) acc[r][j] = _mm512_fmadd_ps(qv, kv[j], acc[r][j]);
            }
        }
        #pragma GCC unroll 16
        for (int r = 0; r < 4; ++r) _mm_storeu_ps(out + std::size_t(r) * out_stride, simd::hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
    }
    // For four queries r: out_r[0, n) = the sum over rows j < count[r] of a_r[j] * row j (weights
    // `a_stride` apart, outputs `out_stride` apart, rows `stride` apart; count ascending). Each row is
    // converted once for the four, 64 output values at a time held in registers; every output lane adds
    // its rows in order with one fma each, as axpy does, so the results are axpy's bits.
    static void weighted_sum4(const float* a, std::size_t a_stride, const int* count, const std::uint16_t* v, std::size_t stride,
                              float* out, std::size_t out_stride, int n) {
        for (int c = 0; c < n; c += 64) {
            const int w = std::min(64, n - c);
            const std::uint16_t* vc = v + c;
            float* oc = out + c;
            switch ((w + 15) / 16) {
                case 1: weighted_sum4_columns<1>(a, a_stride, count, vc, stride, oc, out_stride, w); break;
                case 2: weighted_sum4_columns<2>(a, a_stride, count, vc, stride, oc, out_stride, w); break;
                case 3: weighted_sum4_columns<3>(a, a_stride, count, vc, stride, oc, out_stride, w); break;
                default: weighted_sum4_columns<4>(a, a_stride, count, vc, stride, oc, out_stride, w); break;
            }
        }
    }
    // weighted_sum4 over `w` columns in V vectors: the loop bounds are constants, so the 4 x V sums stay
    // in registers.
    template <int V>
    static void weighted_sum4_columns(const float* a, std::size_t a_stride, const int* count, const std::uint16_t* v, std::size_t stride,
                                      float* out, std::size_t out_stride, int w) {
        __mmask16 m[V];
        __m512 acc[4][V];
        #pragma GCC unroll 16
        for (int i = 0; i < V; ++i) m[i] = mask(w, 16 * i);
        #pragma GCC unroll 16
        for (auto& r : acc)
            #pragma GCC unroll 16
            for (auto& x : r) x = _mm512_setzero_ps();
        const auto add = [&](int j, auto all) {
            const std::uint16_t* vj = v + std::size_t(j) * stride;
            __m512 row[V];
            #pragma GCC unroll 16
            for (int i = 0; i < V; ++i) row[i] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[i], vj + 16 * i));
            #pragma GCC unroll 16
            for (int r = 0; r < 4; ++r) {
                if (!all && j >= count[r]) continue;
                const __m512 ar = _mm512_set1_ps(a[std::size_t(r) * a_stride + std::size_t(j)]);
                #pragma GCC unroll 16
                for (int i = 0; i < V; ++i) acc[r][i] = _mm512_fmadd_ps(ar, row[i], acc[r][i]);
            }
        };
        int j = 0;
        for (; j < count[0]; ++j) add(j, std::true_type{});
        for (; j < count[3]; ++j) add(j, std::false_type{});
        #pragma GCC unroll 16
        for (int r = 0; r < 4; ++r)
            #pragma GCC unroll 16
            for (int i = 0; i < V; ++i) _mm512_mask_storeu_ps(out + std::size_t(r) * out_stride + std::size_t(16 * i), m[i], acc[r][i]);
    }
    static void axpy4(const float* a, const std::uint16_t* v, std::size_t stride, float* out, int n) {
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = mask(n, i);
            __m512 o = _mm512_maskz_loadu_ps(m, out + i);
            for (int r = 0; r < 4; ++r)
                o = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + std::size_t(r) * stride + std::size_t(i))), o);
            _mm512_mask_storeu_ps(out + i, m, o);
        }
    }
};
#endif

#if FORGE_HAVE_AVX2
template <>
struct F16Rows<isa::Avx2> {
    static void store(const float* x, std::uint16_t* out, int n) {
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; ++i) out[i] = f32_to_f16(x[i]);
    }
    // head_dim is a multiple of 4: a 4-wide tail finishes any row.
    static float dot(const float* q, const std::uint16_t* k, int n) {
        __m256 acc = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= n; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i))), acc);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        for (; i < n; i += 4)
            s = _mm_fmadd_ps(_mm_loadu_ps(q + i), _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(k + i))), s);
        return simd::hsum(s);
    }
    static void axpy(float a, const std::uint16_t* v, float* out, int n) {
        int i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_set1_ps(a), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i))), _mm256_loadu_ps(out + i)));
        for (; i < n; i += 4)
            _mm_storeu_ps(out + i, _mm_fmadd_ps(_mm_set1_ps(a), _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v + i))), _mm_loadu_ps(out + i)));
    }
};
#endif

#if FORGE_HAVE_NEON
template <>
struct F16Rows<isa::Neon> {
    static float32x4_t load4(const std::uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
    static void store(const float* x, std::uint16_t* out, int n) {
        int i = 0;
        for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
        for (; i < n; ++i) out[i] = f32_to_f16(x[i]);
    }
    static float dot(const float* q, const std::uint16_t* k, int n) {
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (int i = 0; i < n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(q + i), load4(k + i));
        return vaddvq_f32(acc);
    }
    static void axpy(float a, const std::uint16_t* v, float* out, int n) {
        for (int i = 0; i < n; i += 4) vst1q_f32(out + i, vfmaq_n_f32(vld1q_f32(out + i), load4(v + i), a));
    }
};
#endif

}  // namespace forge::cpu
