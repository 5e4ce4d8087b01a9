#pragma once
// The AVX-512 VNNI batch kernel for Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K weights (prefill; decode's few
// tokens use the micro-kernels in kernels_avx512.hpp and kernels_avx512_blocks.hpp; where AMX is compiled
// in, kernels_avx512_amx.hpp takes whole tiles of rows). It puts 16 tokens side by side, one per 32-bit
// lane (Q8Lanes): vpdpbusd of a broadcast of four codes of one weight row against four codes of each of
// 16 tokens advances 16 dots at once, eight of them finish a 32-value block (four a 16-value Q6_K one),
// and each lane then holds one token's exact int32 block dot, which one cvt + mul + fma per 16 tokens
// scales into its float accumulator: fma(float(dot), s_w * d_x, acc), block after block, and for weights
// with mins one fma more, fma(d_x * sum(x), min_w, acc). Nothing is reduced across lanes, so most of the
// work is vpdpbusd itself (the micro-kernel spends three float operations per vpdpbusd).
//
// vpdpbusd multiplies unsigned by signed bytes: weight codes are read as w + offset (Q8_0: w ^ 0x80;
// Q4_0, Q5_0, Q6_K: the raw codes) and the activations carry the offset's correction. A tile of kTileRows rows
// x kTileGroups groups of 16 tokens keeps its accumulators in registers; its rows are unpacked once
// (kernels_avx512_unpack.hpp) into per-thread scratch and reused by every group of tokens. The K-quants'
// activations are Q8_K's codes, as their one-token kernels read, so the two agree to rounding.
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_avx512.hpp"
#include "forge/cpu/kernels/kernels_avx512_unpack.hpp"
#include "forge/cpu/kernels/q8_lanes.hpp"
#include "forge/cpu/weight_view.hpp"

#if FORGE_HAVE_AVX512
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forge/cpu/simd/x86.hpp"

namespace forge::cpu {

namespace vnni {

// One block's exact int32 dots of 16 tokens (the correction included) into their float accumulators:
// fma(float(dot), d_w * d_x, acc). The AMX tiles scale with this too, so both kernels give the same bits.
inline __m512 add_scaled_block(__m512 acc, __m512i dot, float row_scale, __m512 dx) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(_mm512_set1_ps(row_scale), dx), acc);
}

// A block's min (negated) times 16 tokens' scaled sums of its activations, after add_scaled_block.
inline __m512 add_block_min(__m512 acc, __m512 sums, float row_min) { return _mm512_fmadd_ps(sums, _mm512_set1_ps(row_min), acc); }

// One tile: R unpacked rows (codes[i * cols ...], scales and mins [i * blocks ...]) times token groups
// g0 .. g0 + G - 1; out[i][gg] gets row i's results for the group's 16 tokens. Blocks are V values.
// The next tile's rows (`next`, `row_bytes` long) are fetched meanwhile, a block's share per block, so
// unpacking them does not wait on memory.
template <int R, int G, int V, bool kMins>
void lane_tile(const std::uint8_t* codes, const float* scales, const float* mins, const Q8Lanes& x, int g0, const std::byte* const (&next)[R],
               std::size_t row_bytes, float (&out)[R][G][16]) {
    const int blocks = x.blocks();
    const std::size_t row_codes = std::size_t(blocks) * V;
    __m512 acc[R][G];
    FORGE_UNROLL for (auto& row : acc)
        FORGE_UNROLL for (auto& a : row) a = _mm512_setzero_ps();
    for (int b = 0; b < blocks; ++b) {
        FORGE_UNROLL for (int i = 0; i < R; ++i)
            _mm_prefetch(reinterpret_cast<const char*>(next[i] + row_bytes * std::size_t(b) / std::size_t(blocks)), _MM_HINT_T0);
        __m512i dot[R][G];
        const std::int8_t* xq[G];
        FORGE_UNROLL for (int g = 0; g < G; ++g) {
            const __m512i corr = _mm512_loadu_si512(x.corr(g0 + g, b));
            FORGE_UNROLL for (int i = 0; i < R; ++i) dot[i][g] = corr;
            xq[g] = x.codes(g0 + g, b);
        }
        FORGE_UNROLL for (int k = 0; k < V / 4; ++k) {
            __m512i xv[G];
            FORGE_UNROLL for (int g = 0; g < G; ++g) xv[g] = _mm512_load_si512(xq[g] + 64 * k);
            FORGE_UNROLL for (int i = 0; i < R; ++i) {
                std::int32_t four;
                std::memcpy(&four, codes + std::size_t(i) * row_codes + std::size_t(b) * V + 4 * k, 4);
                const __m512i wv = _mm512_set1_epi32(four);
                FORGE_UNROLL for (int g = 0; g < G; ++g) dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], wv, xv[g]);
            }
        }
        FORGE_UNROLL for (int g = 0; g < G; ++g) {
            const __m512 dx = _mm512_loadu_ps(x.d(g0 + g, b));
            const __m512 sums = kMins ? _mm512_loadu_ps(x.sums(g0 + g, b)) : _mm512_setzero_ps();
            FORGE_UNROLL for (int i = 0; i < R; ++i) {
                const std::size_t at = std::size_t(i) * std::size_t(blocks) + std::size_t(b);
                acc[i][g] = add_scaled_block(acc[i][g], dot[i][g], scales[at], dx);
                if constexpr (kMins) acc[i][g] = add_block_min(acc[i][g], sums, mins[at]);
            }
        }
    }
    FORGE_UNROLL for (int i = 0; i < R; ++i)
        FORGE_UNROLL for (int g = 0; g < G; ++g) _mm512_storeu_ps(out[i][g], acc[i][g]);
}

// Four rows' results for 16 tokens (one row per array) to each token's four adjacent outputs, tokens
// `stride` floats apart: a 4 x 16 transpose, where gathering each token's four floats one by one cost
// about as much as a fifth of the tile's dot products.
inline void store_tokens(const float* r0, const float* r1, const float* r2, const float* r3, float* y, std::size_t stride) {
    const __m512 a = _mm512_loadu_ps(r0), b = _mm512_loadu_ps(r1), c = _mm512_loadu_ps(r2), d = _mm512_loadu_ps(r3);
    // Per 128-bit lane L: lo = rows 0, 1 of tokens 4L, 4L+1; hi = of tokens 4L+2, 4L+3 (then rows 2, 3).
    const __m512d ab_lo = _mm512_castps_pd(_mm512_unpacklo_ps(a, b)), ab_hi = _mm512_castps_pd(_mm512_unpackhi_ps(a, b));
    const __m512d cd_lo = _mm512_castps_pd(_mm512_unpacklo_ps(c, d)), cd_hi = _mm512_castps_pd(_mm512_unpackhi_ps(c, d));
    // tok[k]'s 128-bit lane L: the four rows of token 4L + k.
    const __m512 tok[4] = {_mm512_castpd_ps(_mm512_unpacklo_pd(ab_lo, cd_lo)), _mm512_castpd_ps(_mm512_unpackhi_pd(ab_lo, cd_lo)),
                           _mm512_castpd_ps(_mm512_unpacklo_pd(ab_hi, cd_hi)), _mm512_castpd_ps(_mm512_unpackhi_pd(ab_hi, cd_hi))};
    for (int k = 0; k < 4; ++k) {
        _mm_storeu_ps(y + std::size_t(k) * stride, _mm512_castps512_ps128(tok[k]));
        _mm_storeu_ps(y + std::size_t(4 + k) * stride, _mm512_extractf32x4_ps(tok[k], 1));
        _mm_storeu_ps(y + std::size_t(8 + k) * stride, _mm512_extractf32x4_ps(tok[k], 2));
        _mm_storeu_ps(y + std::size_t(12 + k) * stride, _mm512_extractf32x4_ps(tok[k], 3));
    }
}

inline constexpr int kTileRows = 4;
inline constexpr int kTileGroups = 2;

// Rows [r0, r1) times every token of a by-lane input.
template <DType W>
void by_lane(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
    constexpr int R = kTileRows, G = kTileGroups, V = unpack::Format<W>::kValues;
    constexpr bool kMins = unpack::Format<W>::kMins;
    static_assert(R == 4, "store_tokens writes four rows per token");
    const int blocks = x.blocks();
    // Per thread, grown once: the tile's rows unpacked.
    thread_local std::vector<std::uint8_t> codes;
    thread_local std::vector<float> scales, mins;
    codes.resize(std::max(codes.size(), std::size_t(R) * std::size_t(blocks) * V));
    scales.resize(std::max(scales.size(), std::size_t(R) * std::size_t(blocks)));
    if constexpr (kMins) mins.resize(std::max(mins.size(), std::size_t(R) * std::size_t(blocks)));
    float out[R][G][16];
    for (int r = r0; r < r1; r += R) {
        const int n = std::min(R, r1 - r);
        const std::byte* next[R];
        FORGE_UNROLL for (int i = 0; i < R; ++i) next[i] = w.row(std::min(r + R + i, r1 - 1));
        FORGE_UNROLL for (int i = 0; i < R; ++i)
            unpack::row<W>(w.row(r + std::min(i, n - 1)), blocks, &codes[std::size_t(i) * std::size_t(blocks) * V], V,
                           &scales[std::size_t(i) * std::size_t(blocks)], kMins ? &mins[std::size_t(i) * std::size_t(blocks)] : nullptr, 1);
        for (int g = 0; g < x.groups(); g += G) {
            const int ng = std::min(G, x.groups() - g);
            if (ng == G) lane_tile<R, G, V, kMins>(codes.data(), scales.data(), mins.data(), x, g, next, w.row_stride(), out);
            else {
                float one[R][1][16];
                lane_tile<R, 1, V, kMins>(codes.data(), scales.data(), mins.data(), x, g, next, w.row_stride(), one);
                FORGE_UNROLL for (int i = 0; i < R; ++i) std::copy_n(one[i][0], 16, out[i][0]);
            }
            for (int gg = 0; gg < ng; ++gg) {
                const int t0 = (g + gg) * Q8Lanes::kLanes, nt = std::min(Q8Lanes::kLanes, x.tokens() - t0);
                float* yt = y + std::size_t(t0) * y_stride + std::size_t(r);
                if (n == R && nt == Q8Lanes::kLanes) {
                    store_tokens(out[0][gg], out[1][gg], out[2][gg], out[3][gg], yt, y_stride);
                } else {
                    for (int l = 0; l < nt; ++l)
                        for (int i = 0; i < n; ++i) yt[std::size_t(l) * y_stride + std::size_t(i)] = out[i][gg][l];
                }
            }
        }
    }
}

}  // namespace vnni
}  // namespace forge::cpu

#include "forge/cpu/kernels/kernels_avx512_amx.hpp"

namespace forge::cpu {

// With AMX compiled in (the avx512-amx set), long batches go to the tiles: the same bits.
template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0 || W == DType::Q5_0 || W == DType::Q4_K || W == DType::Q5_K || W == DType::Q6_K)
struct BatchKernel<isa::Avx512, W> {
    static constexpr int kMinTokens = 8;  // below this the micro-kernel's tiles waste fewer lanes
    static constexpr int kRows = vnni::kTileRows;
#if FORGE_HAVE_AMX
    // Batches on the tiles share rows in whole tiles: in shares of the VNNI tile's 4 rows, a 896-row
    // matrix over 8 threads left 12 of every 28 rows to the VNNI kernel, and over 16 threads all of them.
    static int row_grain(int tokens) { return amx::takes<W>(tokens) ? amx::kTileRows : kRows; }
#endif
    static constexpr LanesLayout kLayout = unpack::Format<W>::kLayout;
    using Input = Q8Lanes;

    static void gemm_rows(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
#if FORGE_HAVE_AMX
        amx::by_tile<W>(w, x, r0, r1, y, y_stride);
#else
        vnni::by_lane<W>(w, x, r0, r1, y, y_stride);
#endif
    }
};

}  // namespace forge::cpu
#endif
