#pragma once
// Activations quantized to Q8_0 blocks (Q8Rows::quantize_block: the codes and f16-rounded scale
// llama.cpp uses) with 16 tokens side by side, for the AVX-512 VNNI batch kernel. Per group of 16
// tokens and block: eight 64-byte vectors whose 32-bit lane l holds four consecutive codes of token l
// (so vpdpbusd against a broadcast of four weight codes advances 16 tokens' dots at once), then each
// token's correction -offset * (sum of codes), which makes the kernel's unsigned weight codes
// (w + offset) give the exact signed dot, and each token's scale.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "forge/cpu/kernels/q8_rows.hpp"

namespace forge::cpu {

// What a kernel reading Q8Lanes expects: its weights are read as unsigned codes w + offset.
struct LanesLayout {
    int offset = 0;
    friend constexpr bool operator==(const LanesLayout&, const LanesLayout&) = default;
};

class Q8Lanes {
public:
    static constexpr int kLanes = 16;

    // Sizes the storage for `tokens` x `cols` (a multiple of 32). Storage only grows, so a model that
    // sized it for its largest batch never allocates again.
    void prepare(int tokens, int cols, LanesLayout layout) {
        layout_ = layout;
        tokens_ = tokens;
        blocks_ = cols / 32;
        const std::size_t slots = std::size_t(groups() * kLanes) * std::size_t(blocks_);
        if (codes_.size() < slots / 2) codes_.resize(slots / 2);  // 32 codes per token and block
        if (corr_.size() < slots) corr_.resize(slots);
        if (d_.size() < slots) d_.resize(slots);
        // The last group's unused lanes are computed and discarded: give them zeros, not stale values.
        const std::int8_t zeros[32] = {};
        for (int t = tokens; t < groups() * kLanes; ++t)
            for (int b = 0; b < blocks_; ++b) put(t, b, zeros, 0.0f, 0);
    }

    // Quantizes tokens [t0, t1) of x (rows `stride` floats apart); ranges may be done in parallel.
    void quantize(const float* x, int stride, int t0, int t1) {
        for (int t = t0; t < t1; ++t)
            for (int b = 0; b < blocks_; ++b) {
                std::int8_t q[32];
                std::int32_t sum = 0;
                const float d = Q8Rows::quantize_block(x + std::size_t(t) * std::size_t(stride) + std::size_t(b) * 32, q, sum);
                put(t, b, q, d, -layout_.offset * sum);
            }
    }

    const LanesLayout& layout() const { return layout_; }
    int tokens() const { return tokens_; }
    int blocks() const { return blocks_; }
    int groups() const { return (tokens_ + kLanes - 1) / kLanes; }

    // Block b of group g: eight code vectors, 16 corrections, 16 scales.
    const std::int8_t* codes(int g, int b) const { return codes_[slot(g, b) / 2].q; }
    const std::int32_t* corr(int g, int b) const { return &corr_[slot(g, b)]; }
    const float* d(int g, int b) const { return &d_[slot(g, b)]; }

private:
    struct alignas(64) Chunk {
        std::int8_t q[64];
    };
    std::size_t slot(int g, int b) const { return (std::size_t(g) * std::size_t(blocks_) + std::size_t(b)) * kLanes; }

    void put(int t, int b, const std::int8_t* q, float d, std::int32_t corr) {
        const std::size_t lane = std::size_t(t) % kLanes, s = slot(t / kLanes, b);
        for (std::size_t k = 0; k < 8; ++k) std::memcpy(&codes_[s / 2 + k].q[lane * 4], q + k * 4, 4);
        corr_[s + lane] = corr;
        d_[s + lane] = d;
    }

    LanesLayout layout_{};
    int tokens_ = 0, blocks_ = 0;
    std::vector<Chunk> codes_;
    std::vector<std::int32_t> corr_;
    std::vector<float> d_;
};

}  // namespace forge::cpu
