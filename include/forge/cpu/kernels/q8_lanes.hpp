#pragma once
// Activations quantized for the AVX-512 batch kernels, with 16 tokens side by side. Per group of 16
// tokens and weight block (32 values, or 16 for Q6_K): a 64-byte vector per four values whose 32-bit lane
// l holds four consecutive codes of token l (so vpdpbusd against a broadcast of four weight codes
// advances 16 tokens' dots at once), then each token's correction -offset * (sum of the block's codes),
// which makes the kernel's unsigned weight codes (w + offset) give the exact signed dot, each token's
// scale, and for weights with a min per block (Q4_K, Q5_K) each token's scale times the block's sum.
// Codes are those of the activations the weight type's one-token kernel reads: Q8_0 blocks
// (Q8Rows::quantize_block, as llama.cpp rounds them) or Q8_K's 256-value blocks (quantize_q8_K).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/cpu/kernels/q8_rows.hpp"
#include "forge/quant/k_quants.hpp"

namespace forge::cpu {

// What a kernel reading Q8Lanes expects.
struct LanesLayout {
    int offset = 0;         // its weights are read as unsigned codes w + offset
    int block = 32;         // values per weight block (each with its own scale): 32, or 16
    bool k_codes = false;   // activations as Q8_K (one scale per 256 values), not Q8_0 (one per 32)
    bool sums = false;      // keep each token's scale times each block's sum of codes (weights with mins)
    friend constexpr bool operator==(const LanesLayout&, const LanesLayout&) = default;
};

class Q8Lanes {
public:
    static constexpr int kLanes = 16;

    // Sizes the storage for `tokens` x `cols` (a multiple of 32; of 256 for Q8_K codes). Storage only
    // grows, so a model that sized it for its largest batch never allocates again.
    void prepare(int tokens, int cols, LanesLayout layout) {
        layout_ = layout;
        tokens_ = tokens;
        cols_ = cols;
        blocks_ = cols / layout.block;
        const std::size_t slots = std::size_t(groups() * kLanes) * std::size_t(blocks_);
        const std::size_t chunks = std::size_t(groups()) * std::size_t(cols / 4);  // a chunk: 4 codes of 16 tokens
        if (codes_.size() < chunks) codes_.resize(chunks);
        if (corr_.size() < slots) corr_.resize(slots);
        if (d_.size() < slots) d_.resize(slots);
        if (layout.sums && sums_.size() < slots) sums_.resize(slots);
        // The last group's unused lanes are computed and discarded: give them zeros, not stale values.
        const std::int8_t zeros[32] = {};
        for (int t = tokens; t < groups() * kLanes; ++t)
            for (int b = 0; b < blocks_; ++b) put(t, b, zeros, 0.0f, 0, 0.0f);
    }

    // Values quantized together (one activation scale): a row is split between threads in multiples of this.
    int quantum() const { return layout_.k_codes ? kQK_K : 32; }

    // Quantizes columns [c0, c1) (multiples of quantum(); c1 < 0: to the row's end) of tokens [t0, t1) of x
    // (rows `stride` floats apart). Ranges may be done in parallel.
    void quantize(const float* x, int stride, int t0, int t1, int c0 = 0, int c1 = -1) {
        if (c1 < 0) c1 = cols_;
        const int B = layout_.block;
        if (layout_.k_codes) {
            thread_local std::vector<BlockQ8_K> row;
            row.resize(std::size_t(c1 - c0) / kQK_K);
            for (int t = t0; t < t1; ++t) {
                quantize_q8_K(x + std::size_t(t) * std::size_t(stride) + std::size_t(c0), row.data(), std::size_t(c1 - c0));
                for (int b = c0 / B; b < c1 / B; ++b) {
                    const BlockQ8_K& q = row[std::size_t((b * B - c0) / kQK_K)];
                    const int first = b * B % kQK_K;
                    std::int32_t sum = 0;
                    for (int j = first / 16; j < (first + B) / 16; ++j) sum += q.bsums[j];
                    put(t, b, q.qs + first, q.d, -layout_.offset * sum, q.d * float(sum));
                }
            }
            return;
        }
        for (int t = t0; t < t1; ++t)
            for (int b = c0 / 32; b < c1 / 32; ++b) {
                std::int8_t q[32];
                std::int32_t sum = 0;
                const float d = Q8Rows::quantize_block(x + std::size_t(t) * std::size_t(stride) + std::size_t(b) * 32, q, sum);
                put(t, b, q, d, -layout_.offset * sum, d * float(sum));
            }
    }

    const LanesLayout& layout() const { return layout_; }
    int tokens() const { return tokens_; }
    int blocks() const { return blocks_; }
    int groups() const { return (tokens_ + kLanes - 1) / kLanes; }

    // Block b of group g: block / 4 code vectors, 16 corrections, 16 scales, 16 scaled sums.
    const std::int8_t* codes(int g, int b) const { return codes_[chunk(g, b)].q; }
    const std::int32_t* corr(int g, int b) const { return &corr_[slot(g, b)]; }
    const float* d(int g, int b) const { return &d_[slot(g, b)]; }
    const float* sums(int g, int b) const { return &sums_[slot(g, b)]; }

private:
    struct alignas(64) Chunk {
        std::int8_t q[64];
    };
    std::size_t chunk(int g, int b) const { return std::size_t(g) * std::size_t(cols_ / 4) + std::size_t(b) * std::size_t(layout_.block / 4); }
    std::size_t slot(int g, int b) const { return (std::size_t(g) * std::size_t(blocks_) + std::size_t(b)) * kLanes; }

    void put(int t, int b, const std::int8_t* q, float d, std::int32_t corr, float sum) {
        const std::size_t lane = std::size_t(t) % kLanes, s = slot(t / kLanes, b);
        Chunk* c = &codes_[chunk(t / kLanes, b)];
        for (int k = 0; k < layout_.block / 4; ++k) std::memcpy(&c[k].q[lane * 4], q + 4 * k, 4);
        corr_[s + lane] = corr;
        d_[s + lane] = d;
        if (layout_.sums) sums_[s + lane] = sum;
    }

    LanesLayout layout_{};
    int tokens_ = 0, cols_ = 0, blocks_ = 0;
    std::vector<Chunk> codes_;
    std::vector<std::int32_t> corr_;
    std::vector<float> d_, sums_;
};

}  // namespace forge::cpu
