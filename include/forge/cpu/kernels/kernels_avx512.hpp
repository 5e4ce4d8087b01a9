#pragma once
// AVX-512 kernels. Quantized weights use VNNI's vpdpbusd (u8 x s8 -> s32, 64 products per
// instruction): the weight codes are made unsigned by an offset (Q8_0: w ^ 0x80 = w + 128; Q4_0: the
// raw nibble, i.e. w + 8) and the activation rows carry the offset's correction (-offset * block sum,
// spread over the block's int32 lanes) as the accumulator's starting value, so the integer dot is exact.
// F32 / F16 weights use FMA on sixteen floats.
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/simd/hsum.hpp"
#include "forge/cpu/weight_view.hpp"

#if FORGE_HAVE_AVX512
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "forge/cpu/simd/x86.hpp"

#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

// BF16 weights see the activations rounded to BF16 (nearest-even, NaNs kept quiet), as the portable kernel does.
template <DType W>
    requires(W == DType::F32 || W == DType::F16 || W == DType::BF16)
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
        else if constexpr (W == DType::F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + std::size_t(s) * kStep * 2));
        else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + std::size_t(s) * kStep * 2)), 16));
    }
    static __m512 load_x(const Input& in, int t, int s) {
        const __m512 x = _mm512_maskz_loadu_ps(mask(in.cols, s), in.row(t) + s * kStep);
        if constexpr (W != DType::BF16) {
            return x;
        } else {
            const __m512i b = _mm512_castps_si512(x);
            const __m512i rounded = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))));
            const __m512i kept = _mm512_mask_or_epi32(rounded, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), b, _mm512_set1_epi32(0x400000));
            return _mm512_castsi512_ps(_mm512_and_si512(kept, _mm512_set1_epi32(int(0xffff0000u))));
        }
    }
    static void madd(Acc& a, __m512 w, __m512 x) { a = _mm512_fmadd_ps(w, x, a); }
    static float reduce(Acc a) { return simd::hsum(a); }
};

// Q8_0: a step is two blocks, codes loaded as they lie (one of the step's blocks per 256-bit half) and
// the two scales converted and spread over their eight int32 lanes each.
template <>
struct Kernel<isa::Avx512, DType::Q8_0> {
    static constexpr int kStep = 64, kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{.step_blocks = 2, .offset = 128};
    using Input = Q8Rows;
    using Acc = __m512;
    struct WVec {
        __m512i q;  // 64 unsigned codes, in value order
        __m512 d;   // each int32 lane's block scale
    };
    struct XVec {
        __m512i q, corr;
        __m512 d;
    };

    static int steps(int cols) { return (cols / 32 + 1) / 2; }
    static Acc zero() { return _mm512_setzero_ps(); }

    static WVec load_w(const std::byte* row, int s, int cols) {
        const std::byte* b0 = row + std::size_t(2 * s) * sizeof(BlockQ8_0);
        const std::byte* b1 = b0 + sizeof(BlockQ8_0);
        const bool two = 2 * s + 1 < cols / 32;  // an odd block count leaves the last step half empty
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
        const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2)) : _mm256_setzero_si256();
        const __m512i q = _mm512_xor_si512(_mm512_inserti64x4(_mm512_zextsi256_si512(lo), hi, 1), _mm512_set1_epi8(char(0x80)));
        const std::uint32_t h = std::uint32_t(load_u16(b0)) | (two ? std::uint32_t(load_u16(b1)) << 16 : 0u);
        const __m512 d2 = _mm512_zextps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128(int(h))));
        // Lanes 0-7 take the first block's scale, lanes 8-15 the second's.
        return {q, _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), d2)};
    }
    static XVec load_x(const Input& in, int t, int s) {
        return {_mm512_load_si512(in.qs(t, s)), _mm512_load_si512(in.corr(t, s)), _mm512_load_ps(in.d(t, s))};
    }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        const __m512i dot = _mm512_dpbusd_epi32(x.corr, w.q, x.q);
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(w.d, x.d), a);
    }
    static float reduce(Acc a) { return simd::hsum(a); }
};

// The packed nibbles of Q4_0 blocks b .. b + nb - 1 (nb of 1-4), one block per 128-bit lane: low nibbles
// are values 0-15, high nibbles 16-31, both read as w + 8. Lanes past nb (past the row's end) are not
// read and hold block b's again (the decode loop's activation codes and correction there are zero).
inline __m512i q4_0_nibbles(const std::byte* blk, int nb) {
    const auto at = [&](int k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + std::size_t(k) * sizeof(BlockQ4_0) + 2)); };
    __m512i w = _mm512_broadcast_i32x4(at(0));
    if (nb > 1) w = _mm512_mask_broadcast_i32x4(w, 0x00f0, at(1));
    if (nb > 2) w = _mm512_mask_broadcast_i32x4(w, 0x0f00, at(2));
    if (nb > 3) w = _mm512_mask_broadcast_i32x4(w, 0xf000, at(3));
    return w;
}

// Q4_0 has its own loop (gemm_rows) rather than load_w: its blocks are only 18 bytes, and converting
// and spreading each block's f16 scale cost more vector instructions than the dot itself. A step is four
// blocks: their 64 packed bytes, one block per 128-bit lane, give all 128 values with one mask for the
// low nibbles (values 0-15) and a shift and mask for the high ones (16-31); two vpdpbusd against the
// activations' matching halves (layout `halves`) leave each block's dot in four int32 lanes. The scales
// of 16 blocks of a row are picked out of the raw blocks with two word permutes, converted at once and
// multiplied by the activations' 16 block scales; a step spreads its four products with one permute.
// (The same loop measured slower than the micro-kernel for Q8_0.)
template <>
struct Kernel<isa::Avx512, DType::Q4_0> {
    static constexpr int kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{.step_blocks = 4, .halves = true, .offset = 8};
    using Input = Q8Rows;
    static constexpr std::size_t kBlockBytes = sizeof(BlockQ4_0);
    static constexpr int kChunk = 16;  // blocks per scale conversion

private:
    // Where a run's tiles lie: row r of tile i is row i * step + r * gap of the run.
    struct Rows {
        std::size_t stride;  // bytes between consecutive weight rows
        int step, gap;
    };
    using RunFn = void (*)(const std::byte*, Rows, int, int, const Q8Rows&, int, float*, std::size_t);
    template <int Cols, std::size_t... I>
    static constexpr std::array<RunFn, sizeof...(I)> runs(std::index_sequence<I...>) {
        return {&run<int(I) / kTokens + 1, int(I) % kTokens + 1, Cols>...};
    }

public:
    // Cols: the row length when known at compile time, else 0.
    template <int Cols>
    static void gemm_rows(const WeightView& w, const Q8Rows& in, int r0, int r1, float* y, std::size_t y_stride) {
        static constexpr auto kRuns = runs<Cols>(std::make_index_sequence<kRows * kTokens>());
        const auto fn = [](int rows, int tokens) { return kRuns[std::size_t((rows - 1) * kTokens + tokens - 1)]; };
        const std::size_t stride = w.row_stride();
        const int tokens = in.tokens();
        if (tokens <= kTokens) {
            // One group of tokens (decode): the full tiles in one run, then the last rows. The run's
            // rows are cut into kRows quarters and tile i takes row i of each, so a tile's rows continue
            // four sequential streams, each in its own pages, which the hardware prefetcher follows
            // from tile to tile; four adjacent rows share pages and read as one stream that jumps about.
            // (Measured from DRAM: 1.13-1.14x on TinyLlama's and Qwen2.5's rows, 1.04x on SmolLM2's.)
            const int full = (r1 - r0) / kRows, rest = (r1 - r0) % kRows, r = r0 + full * kRows;
            if (full > 0) fn(kRows, tokens)(w.row(r0), Rows{stride, 1, full}, w.cols, full, in, 0, y + r0, y_stride);
            if (rest > 0) fn(rest, tokens)(w.row(r), Rows{stride, rest, 1}, w.cols, 1, in, 0, y + r, y_stride);
            return;
        }
        // Several groups: each tile (adjacent rows) against every group in turn, its weights reused from L1.
        for (int r = r0; r < r1; r += kRows) {
            const int n = std::min(kRows, r1 - r);
            for (int t = 0; t < tokens; t += kTokens)
                fn(n, std::min(kTokens, tokens - t))(w.row(r), Rows{stride, n, 1}, w.cols, 1, in, t, y + r, y_stride);
        }
    }

private:
    // `tiles` tiles of R rows (from w0, laid out as `rows` says) times tokens t0..t0+T-1. Every output is one
    // accumulator fed step by step in the same order whatever R, T and the run, so decode and small
    // batches agree bit for bit. A chunk's scales are converted while the chunk before it
    // computes (the last chunk of a tile converts the next tile's first): converting takes longer than
    // the out-of-order window can hide when its result is needed at once.
    template <int R, int T, int Cols>
    static void run(const std::byte* w0, Rows rows, int cols, int tiles, const Q8Rows& in, int t0, float* y, std::size_t y_stride) {
        const int blocks = (Cols > 0 ? Cols : cols) / 32;
        // Bytes between a tile's rows, and from one tile to the next.
        const std::size_t stride = rows.stride * std::size_t(rows.gap), tile_bytes = rows.stride * std::size_t(rows.step);
        const std::size_t row_bytes = std::size_t(blocks) * kBlockBytes;
        const std::size_t prefetch_ahead = prefetch_distance(tile_bytes);
        __m512 d[R];  // weight scales of the next chunk to compute
        FORGE_UNROLL for (int r = 0; r < R; ++r) d[r] = chunk_scales(w0 + std::size_t(r) * stride, 0, row_bytes);
        for (int i = 0; i < tiles; ++i, w0 += tile_bytes, y += rows.step) {
            __m512 acc[R][T];
            FORGE_UNROLL for (auto& row : acc)
                FORGE_UNROLL for (auto& a : row) a = _mm512_setzero_ps();
            // Rows ahead are also fetched in software while this tile computes: the hardware prefetcher
            // stops at page boundaries, and alone it was measured slower.
            const std::byte* next = w0 + tile_bytes;
            const std::byte* ahead = w0 + prefetch_ahead;
            for (int c = 0; c < blocks; c += kChunk) {
                __m512 wd[R][T];  // weight scale x activation scale of each of the chunk's blocks
                FORGE_UNROLL for (int r = 0; r < R; ++r)
                    FORGE_UNROLL for (int t = 0; t < T; ++t) wd[r][t] = _mm512_mul_ps(d[r], _mm512_loadu_ps(in.block_scales(t0 + t) + c));
                if (c + kChunk < blocks) {
                    FORGE_UNROLL for (int r = 0; r < R; ++r) d[r] = chunk_scales(w0 + std::size_t(r) * stride, c + kChunk, row_bytes);
                } else if (i + 1 < tiles) {
                    FORGE_UNROLL for (int r = 0; r < R; ++r) d[r] = chunk_scales(next + std::size_t(r) * stride, 0, row_bytes);
                }
                const int n = std::min(kChunk, blocks - c);
                FORGE_UNROLL for (int k = 0; k < kChunk / 4; ++k) {  // a constant trip count, so unrolling stays bounded
                    if (4 * k >= n) break;
                    const int b = c + 4 * k, nb = std::min(4, n - 4 * k);  // a row's last step may have 1-3 blocks
                    const std::size_t at = std::size_t(b) * kBlockBytes;
                    FORGE_UNROLL for (int r = 0; r < R; ++r) __builtin_prefetch(ahead + std::size_t(r) * stride + at);
                    FORGE_UNROLL for (int r = 0; r < R; ++r) __builtin_prefetch(ahead + std::size_t(r) * stride + at + 64);
                    const __m512i spread = _mm512_add_epi32(step_lanes(), _mm512_set1_epi32(4 * k));
                    __m512i lo[R], hi[R];
                    FORGE_UNROLL for (int r = 0; r < R; ++r) {
                        const __m512i w = q4_0_nibbles(w0 + std::size_t(r) * stride + at, nb);
                        lo[r] = _mm512_and_si512(w, _mm512_set1_epi8(0x0f));
                        hi[r] = _mm512_and_si512(_mm512_srli_epi16(w, 4), _mm512_set1_epi8(0x0f));
                    }
                    FORGE_UNROLL for (int t = 0; t < T; ++t) {
                        const std::int8_t* xq = in.qs(t0 + t, b / 4);
                        const __m512i x_lo = _mm512_load_si512(xq), x_hi = _mm512_load_si512(xq + 64);
                        const __m512i xc = _mm512_load_si512(in.corr(t0 + t, b / 4));
                        FORGE_UNROLL for (int r = 0; r < R; ++r) {
                            const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(xc, lo[r], x_lo), hi[r], x_hi);
                            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(spread, wd[r][t]), acc[r][t]);
                        }
                    }
                }
            }
            // The tile's R sums of a token at once (rows past R reduce zeros and are not stored).
            FORGE_UNROLL for (int t = 0; t < T; ++t) {
                const auto row = [&](int r) { return r < R ? acc[r][t] : _mm512_setzero_ps(); };
                const __m128 sums = simd::hsum4(row(0), row(1), row(2), row(3));
                float* yt = y + std::size_t(t0 + t) * y_stride;
                if (rows.gap == 1) {
                    _mm_mask_storeu_ps(yt, __mmask8((1u << R) - 1), sums);
                } else {
                    alignas(16) float f[4];
                    _mm_store_ps(f, sums);
                    FORGE_UNROLL for (int r = 0; r < R; ++r) yt[std::size_t(r) * std::size_t(rows.gap)] = f[r];
                }
            }
        }
    }

    // Lanes 4k..4k+3 take the step's block k's scale.
    static __m512i step_lanes() { return _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3); }

    // The f16 scales of blocks c .. c + 15 of a row as floats, zero past the row's end. A 128-byte
    // window of the row holds the scale words of kPerWindow blocks; one word permute picks them out.
    static constexpr int kPerWindow = 1 + 126 / int(kBlockBytes);
    static constexpr int kWindows = kChunk / kPerWindow;
    struct alignas(64) WordIndex {
        std::uint16_t w[32];
    };
    static constexpr std::array<WordIndex, kWindows> kPick = [] {
        std::array<WordIndex, kWindows> p{};
        for (int j = 0; j < kWindows; ++j)
            for (int k = 0; k < kPerWindow; ++k)
                p[std::size_t(j)].w[j * kPerWindow + k] = std::uint16_t(k * int(kBlockBytes) / 2);
        return p;
    }();
    // Up to 64 bytes at p, no more than n (masked loads neither read nor fault past them).
    static __m512i load_upto(const std::byte* p, std::ptrdiff_t n) {
        if (n >= 64) return _mm512_loadu_si512(p);
        return _mm512_maskz_loadu_epi8(n <= 0 ? 0 : _bzhi_u64(~0ull, unsigned(n)), p);
    }
    static __m512 chunk_scales(const std::byte* row, int c, std::size_t row_bytes) {
        __m512i words = _mm512_setzero_si512();
        FORGE_UNROLL for (int j = 0; j < kWindows; ++j) {
            const std::size_t at = std::size_t(c + j * kPerWindow) * kBlockBytes;
            if (at >= row_bytes) break;
            const std::ptrdiff_t left = std::ptrdiff_t(row_bytes - at);
            const __m512i picked = _mm512_permutex2var_epi16(load_upto(row + at, left), _mm512_load_si512(kPick[std::size_t(j)].w),
                                                             load_upto(row + at + 64, left - 64));
            words = _mm512_mask_blend_epi16(__mmask32(((1u << kPerWindow) - 1) << (j * kPerWindow)), words, picked);
        }
        return _mm512_cvtph_ps(_mm512_castsi512_si256(words));
    }
};

}  // namespace forge::cpu
#endif
