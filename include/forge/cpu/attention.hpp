#pragma once
// Grouped-query attention of one query token over positions [first, last] of an f16 KV cache.
// Query head h reads KV head h / (n_heads / n_kv_heads).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "forge/core/half.hpp"
#include "forge/cpu/softmax.hpp"

namespace forge::cpu {

struct AttentionShape {
    int n_heads;
    int n_kv_heads;
    int head_dim;
    float scale;  // q·k is multiplied by it: ModelShape::kq_scale()
    int kv_dim() const { return n_kv_heads * head_dim; }
};

// q: [n_heads * head_dim]; k, v: cache rows of kv_dim halves per position; scores: scratch of at least
// (last - first + 1) floats; out: [n_heads * head_dim].
inline void attend_head(const AttentionShape& s, int h, const float* q, const std::uint16_t* k, const std::uint16_t* v,
                        int first, int last, float* scores, float* out) {
    const int kvh = h / (s.n_heads / s.n_kv_heads);
    const float scale = s.scale;
    const float* qh = q + h * s.head_dim;
    const int n = last - first + 1;
    for (int j = 0; j < n; ++j) {
        const std::uint16_t* kj = k + std::size_t(first + j) * std::size_t(s.kv_dim()) + kvh * s.head_dim;
        float d = 0.0f;
        for (int i = 0; i < s.head_dim; ++i) d += qh[i] * f16_to_f32(kj[i]);
        scores[j] = d * scale;
    }
    softmax(scores, n);
    float* oh = out + h * s.head_dim;
    for (int i = 0; i < s.head_dim; ++i) oh[i] = 0.0f;
    for (int j = 0; j < n; ++j) {
        const std::uint16_t* vj = v + std::size_t(first + j) * std::size_t(s.kv_dim()) + kvh * s.head_dim;
        for (int i = 0; i < s.head_dim; ++i) oh[i] += scores[j] * f16_to_f32(vj[i]);
    }
}

}  // namespace forge::cpu
