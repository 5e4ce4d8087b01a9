#pragma once
// Activations quantized to one of ggml's activation block types, rows of blocks as ggml lays them out: Q8_K
// (the K-quants' partner: 256 codes, a float scale and sums of 16) and Q8_1 (Q4_1's and Q5_1's: 32 codes, an f16
// scale and the scaled sum). Kernels for those weights read a token's row block by block, as ggml's vec_dot does.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "forge/cpu/kernels/q8_rows.hpp"
#include "forge/cpu/simd/isa.hpp"
#if FORGE_HAVE_AVX512
#include "forge/cpu/simd/x86.hpp"
#endif

#include "forge/quant/k_quants.hpp"
#include "forge/quant/q8_1.hpp"

namespace forge::cpu {

// quantize_row_q8_K (quant/k_quants.hpp) with AVX-512 where the kernels have it, the same bits: the largest
// magnitude found as the maximum of magnitude_bits (NaN skipped), its first occurrence giving the sign of
// the scale, and the products rounded by the conversion, which rounds to nearest-even and turns a
// non-finite product into 0x80000000, whose low byte is the reference's code 0.
inline void quantize_q8_K(const float* x, BlockQ8_K* out, std::size_t n) {
#if FORGE_HAVE_AVX512
    constexpr int kVectors = kQK_K / 16;
    for (std::size_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
        __m512i mag[kVectors];
        __m512i top = _mm512_setzero_si512();
        for (int v = 0; v < kVectors; ++v) {
            mag[v] = magnitude_bits(_mm512_loadu_ps(x + 16 * v));
            top = _mm512_max_epu32(top, mag[v]);
        }
        BlockQ8_K& y = out[b];
        const std::uint32_t amax = _mm512_reduce_max_epu32(top);
        if (amax == 0) {
            y = BlockQ8_K{};
            continue;
        }
        int first = 0;
        for (int v = 0; v < kVectors; ++v)
            if (const __mmask16 at = _mm512_cmpeq_epi32_mask(mag[v], _mm512_set1_epi32(int(amax)))) {
                first = 16 * v + std::countr_zero(unsigned(at));
                break;
            }
        const float iscale = -127.0f / x[first];
        for (int v = 0; v < kVectors; ++v) {
            const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * v), _mm512_set1_ps(iscale))),
                                               _mm512_set1_epi32(127));
            const __m128i codes = _mm512_cvtepi32_epi8(q);  // truncating: a non-finite product's code is 0
            _mm_storeu_si128(reinterpret_cast<__m128i*>(y.qs + 16 * v), codes);
            y.bsums[v] = static_cast<std::int16_t>(_mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(codes)));
        }
        y.d = 1.0f / iscale;
    }
#else
    quantize_row_q8_K(x, out, n);
#endif
}

// BlockRows have one layout per block type; this stands for it where the GEMM input compares layouts.
struct BlockLayout {
    friend constexpr bool operator==(const BlockLayout&, const BlockLayout&) = default;
};

template <class Block>
class BlockRows {
public:
    static constexpr int kBlockElems = sizeof(Block::qs);

    // Sizes the rows for `tokens` x `cols` (a multiple of the block size). Storage only grows.
    void prepare(int tokens, int cols, BlockLayout) {
        tokens_ = tokens;
        blocks_ = cols / kBlockElems;
        const std::size_t need = std::size_t(tokens) * std::size_t(blocks_);
        if (data_.size() < need) data_.resize(need);
    }

    // Quantizes tokens [t0, t1) of x (rows `stride` floats apart); ranges may be done in parallel.
    void quantize(const float* x, int stride, int t0, int t1) {
        for (int t = t0; t < t1; ++t) {
            const float* xt = x + std::size_t(t) * std::size_t(stride);
            Block* out = data_.data() + std::size_t(t) * std::size_t(blocks_);
            const std::size_t n = std::size_t(blocks_) * kBlockElems;
            if constexpr (std::is_same_v<Block, BlockQ8_K>) quantize_q8_K(xt, out, n);
            else quantize_row_q8_1(xt, out, n);
        }
    }

    BlockLayout layout() const { return {}; }
    int tokens() const { return tokens_; }
    int blocks() const { return blocks_; }  // per token
    // Token t's blocks.
    const Block* row(int t) const { return data_.data() + std::size_t(t) * std::size_t(blocks_); }

private:
    int tokens_ = 0, blocks_ = 0;
    std::vector<Block> data_;
};

using Q8KRows = BlockRows<BlockQ8_K>;
using Q81Rows = BlockRows<BlockQ8_1>;

}  // namespace forge::cpu
