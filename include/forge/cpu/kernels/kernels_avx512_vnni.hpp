#pragma once
// The AVX-512 VNNI batch kernel for Q8_0 / Q4_0 weights (prefill; decode's few tokens use the
// micro-kernel in kernels_avx512.hpp; where AMX is compiled in, kernels_avx512_amx.hpp takes whole
// tiles of rows). It puts 16 tokens side by side, one per 32-bit lane (Q8Lanes):
// vpdpbusd of a broadcast of four codes of one weight row against four codes of each of 16 tokens
// advances 16 dots at once, eight of them finish a 32-value block, and each lane then holds one
// token's exact int32 block dot, which one cvt + mul + fma per 16 tokens scales into its float
// accumulator: fma(float(dot), d_w * d_x, acc), block after block. Nothing is reduced across lanes, so
// most of the work is vpdpbusd itself (the micro-kernel spends three float operations per vpdpbusd).
//
// vpdpbusd multiplies unsigned by signed bytes: weight codes are read as w + offset (Q8_0: w ^ 0x80;
// Q4_0: the raw nibble) and the activations carry the offset's correction. A tile of kTileRows rows x
// kTileGroups groups of 16 tokens keeps its accumulators in registers; its rows are unpacked once into
// per-thread scratch (unsigned codes, float scales) and reused by every group of tokens.
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_avx512.hpp"
#include "forge/cpu/kernels/q8_lanes.hpp"
#include "forge/cpu/weight_view.hpp"

#if FORGE_HAVE_AVX512
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forge/cpu/simd/x86.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

namespace vnni {

template <DType W>
inline constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
template <DType W>
inline constexpr int kOffset = W == DType::Q8_0 ? 128 : 8;

inline float block_scale(const std::byte* block) { return _cvtsh_ss(load_u16(block)); }

// A block's 32 codes in value order: unsigned bytes w + offset (vpdpbusd's first operand), or with
// kSigned the signed values w themselves (AMX's tdpbssd takes two signed operands).
template <DType W, bool kSigned = false>
inline __m256i block_codes(const std::byte* block) {
    if constexpr (W == DType::Q8_0) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
        return kSigned ? q : _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
    } else {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
        const __m128i low = _mm_set1_epi8(0x0f);
        const __m256i u = _mm256_setr_m128i(_mm_and_si128(q, low), _mm_and_si128(_mm_srli_epi16(q, 4), low));
        return kSigned ? _mm256_sub_epi8(u, _mm256_set1_epi8(8)) : u;
    }
}

// A row's `blocks` blocks as block_codes (block b's 32 at codes + b * code_stride) and float scales
// (scales[b * scale_stride]). Q4_0 takes four blocks at a time: their low and high nibbles in two
// vectors, interleaved back into block order with two permutes, where one block at a time cost four
// vector instructions per 16 bytes.
template <DType W, bool kSigned = false>
inline void unpack_row(const std::byte* src, int blocks, std::uint8_t* codes, std::size_t code_stride, float* scales, std::size_t scale_stride) {
    const auto store2 = [&](int b, __m512i two) {  // blocks b and b + 1
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b) * code_stride), _mm512_castsi512_si256(two));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b + 1) * code_stride), _mm512_extracti64x4_epi64(two, 1));
    };
    int b = 0;
    if constexpr (W == DType::Q4_0) {
        const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        for (; b + 4 <= blocks; b += 4) {
            const __m512i q = q4_0_nibbles(src + std::size_t(b) * kBlockBytes<W>, 4);
            __m512i lo = _mm512_and_si512(q, _mm512_set1_epi8(0x0f)), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0f));
            if constexpr (kSigned) {
                lo = _mm512_sub_epi8(lo, _mm512_set1_epi8(8));
                hi = _mm512_sub_epi8(hi, _mm512_set1_epi8(8));
            }
            store2(b, _mm512_permutex2var_epi64(lo, first, hi));
            store2(b + 2, _mm512_permutex2var_epi64(lo, second, hi));
            for (int k = 0; k < 4; ++k) scales[std::size_t(b + k) * scale_stride] = block_scale(src + std::size_t(b + k) * kBlockBytes<W>);
        }
    }
    for (; b < blocks; ++b) {
        const std::byte* block = src + std::size_t(b) * kBlockBytes<W>;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + std::size_t(b) * code_stride), block_codes<W, kSigned>(block));
        scales[std::size_t(b) * scale_stride] = block_scale(block);
    }
}

// One block's exact int32 dots of 16 tokens (the correction included) into their float accumulators:
// fma(float(dot), d_w * d_x, acc). The AMX tiles scale with this too, so both kernels give the same bits.
inline __m512 add_scaled_block(__m512 acc, __m512i dot, float row_scale, __m512 dx) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(_mm512_set1_ps(row_scale), dx), acc);
}

// One tile: R unpacked rows (codes[i * blocks * 32 ...], scales[i * blocks ...]) times token groups
// g0 .. g0 + G - 1; out[i][gg] gets row i's results for the group's 16 tokens.
// The next tile's rows (`next`, blocks `block_bytes` apart) are fetched meanwhile, a block per block, so
// unpacking them does not wait on memory.
template <int R, int G>
void lane_tile(const std::uint8_t* codes, const float* scales, const Q8Lanes& x, int g0, const std::byte* const (&next)[R],
               std::size_t block_bytes, float (&out)[R][G][16]) {
    const int blocks = x.blocks();
    const std::size_t row_bytes = std::size_t(blocks) * 32;
    __m512 acc[R][G];
    FORGE_UNROLL for (auto& row : acc)
        FORGE_UNROLL for (auto& a : row) a = _mm512_setzero_ps();
    for (int b = 0; b < blocks; ++b) {
        FORGE_UNROLL for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(next[i] + std::size_t(b) * block_bytes), _MM_HINT_T0);
        __m512i dot[R][G];
        const std::int8_t* xq[G];
        FORGE_UNROLL for (int g = 0; g < G; ++g) {
            const __m512i corr = _mm512_loadu_si512(x.corr(g0 + g, b));
            FORGE_UNROLL for (int i = 0; i < R; ++i) dot[i][g] = corr;
            xq[g] = x.codes(g0 + g, b);
        }
        FORGE_UNROLL for (int k = 0; k < 8; ++k) {
            __m512i xv[G];
            FORGE_UNROLL for (int g = 0; g < G; ++g) xv[g] = _mm512_load_si512(xq[g] + 64 * k);
            FORGE_UNROLL for (int i = 0; i < R; ++i) {
                std::int32_t four;
                std::memcpy(&four, codes + std::size_t(i) * row_bytes + std::size_t(b) * 32 + 4 * k, 4);
                const __m512i wv = _mm512_set1_epi32(four);
                FORGE_UNROLL for (int g = 0; g < G; ++g) dot[i][g] = _mm512_dpbusd_epi32(dot[i][g], wv, xv[g]);
            }
        }
        FORGE_UNROLL for (int g = 0; g < G; ++g) {
            const __m512 dx = _mm512_loadu_ps(x.d(g0 + g, b));
            FORGE_UNROLL for (int i = 0; i < R; ++i)
                acc[i][g] = add_scaled_block(acc[i][g], dot[i][g], scales[std::size_t(i) * std::size_t(blocks) + std::size_t(b)], dx);
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
    constexpr int R = kTileRows, G = kTileGroups;
    static_assert(R == 4, "store_tokens writes four rows per token");
    const int blocks = x.blocks();
    // Per thread, grown once: the tile's rows unpacked.
    thread_local std::vector<std::uint8_t> codes;
    thread_local std::vector<float> scales;
    codes.resize(std::max(codes.size(), std::size_t(R) * std::size_t(blocks) * 32));
    scales.resize(std::max(scales.size(), std::size_t(R) * std::size_t(blocks)));
    float out[R][G][16];
    for (int r = r0; r < r1; r += R) {
        const int n = std::min(R, r1 - r);
        const std::byte* next[R];
        FORGE_UNROLL for (int i = 0; i < R; ++i) next[i] = w.row(std::min(r + R + i, r1 - 1));
        FORGE_UNROLL for (int i = 0; i < R; ++i)
            unpack_row<W>(w.row(r + std::min(i, n - 1)), blocks, &codes[std::size_t(i) * std::size_t(blocks) * 32], 32,
                          &scales[std::size_t(i) * std::size_t(blocks)], 1);
        for (int g = 0; g < x.groups(); g += G) {
            const int ng = std::min(G, x.groups() - g);
            if (ng == G) lane_tile<R, G>(codes.data(), scales.data(), x, g, next, kBlockBytes<W>, out);
            else {
                float one[R][1][16];
                lane_tile<R, 1>(codes.data(), scales.data(), x, g, next, kBlockBytes<W>, one);
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
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct BatchKernel<isa::Avx512, W> {
    static constexpr int kMinTokens = 8;  // below this the micro-kernel's tiles waste fewer lanes
    static constexpr int kRows = vnni::kTileRows;
#if FORGE_HAVE_AMX
    // Batches on the tiles share rows in whole tiles: in shares of the VNNI tile's 4 rows, a 896-row
    // matrix over 8 threads left 12 of every 28 rows to the VNNI kernel, and over 16 threads all of them.
    static int row_grain(int tokens) { return amx::takes(tokens) ? amx::kTileRows : kRows; }
#endif
    static constexpr LanesLayout kLayout{.offset = vnni::kOffset<W>};
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
