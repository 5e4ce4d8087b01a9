#pragma once
// The f16 key/value cache: per layer, `capacity` positions of kv_dim halves for K and for V.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>


namespace forge {

class KVCache {
public:
    KVCache(int layers, int capacity, int kv_dim)
        : layers_(layers), capacity_(capacity), kv_dim_(kv_dim),
          k_(std::size_t(layers) * std::size_t(capacity) * std::size_t(kv_dim)),
          v_(k_.size()) {}

    int capacity() const { return capacity_; }
    std::size_t bytes() const { return (k_.size() + v_.size()) * sizeof(std::uint16_t); }

    const std::uint16_t* k(int layer) const { return k_.data() + layer_offset(layer); }
    const std::uint16_t* v(int layer) const { return v_.data() + layer_offset(layer); }

    // Rounds one position's K and V to f16 and stores them, with the model's kernel set's store_f16.
    void store(int layer, int pos, const float* k, const float* v, void (*store_f16)(const float*, std::uint16_t*, int)) {
        const std::size_t o = layer_offset(layer) + std::size_t(pos) * std::size_t(kv_dim_);
        store_f16(k, &k_[o], kv_dim_);
        store_f16(v, &v_[o], kv_dim_);
    }

    // Copies positions 0..n-1 of every layer into `to`, a cache of the same layers and kv_dim.
    void copy_prefix_to(KVCache& to, int n) const {
        const std::size_t count = std::size_t(n) * std::size_t(kv_dim_);
        for (int l = 0; l < layers_; ++l) {
            std::copy_n(&k_[layer_offset(l)], count, &to.k_[to.layer_offset(l)]);
            std::copy_n(&v_[layer_offset(l)], count, &to.v_[to.layer_offset(l)]);
        }
    }

private:
    std::size_t layer_offset(int layer) const { return std::size_t(layer) * std::size_t(capacity_) * std::size_t(kv_dim_); }
    int layers_;
    int capacity_;
    int kv_dim_;
    std::vector<std::uint16_t> k_, v_;
};

}  // namespace forge
