#pragma once
// Activations quantized to one of ggml's activation block types, rows of blocks as ggml lays them out: Q8_K
// (the K-quants' partner: 256 codes, a float scale and sums of 16) and Q8_1 (Q4_1's and Q5_1's: 32 codes, an f16
// scale and the scaled sum). Kernels for those weights read a token's row block by block, as ggml's vec_dot does.
#include <cstddef>
#include <type_traits>
#include <vector>

#include "forge/quant/k_quants.hpp"
#include "forge/quant/q8_1.hpp"

namespace forge::cpu {

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
            if constexpr (std::is_same_v<Block, BlockQ8_K>) quantize_row_q8_K(xt, out, n);
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
