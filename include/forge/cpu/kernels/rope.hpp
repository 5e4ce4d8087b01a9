#pragma once
// Rotary embedding with each position's angles computed once per forward pass and shared by every layer
// and head (cpu::rope recomputes pow, cos and sin for every call). The angles come from cpu::rope_angle,
// frequency factors included, so the result is bit-identical to cpu::rope.
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "forge/cpu/rope.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge::cpu {

// Rotates n_heads heads of 2 * half values each by the (cos, sin) pairs `cs` (a RopeTable's angles).
inline void rope_rotate(const float* cs, int half, float* v, int n_heads, RopeStyle style) {
    for (int h = 0; h < n_heads; ++h) {
        float* x = v + h * 2 * half;
        for (int i = 0; i < half; ++i) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            const int a = style == RopeStyle::adjacent ? 2 * i : i;
            const int b = style == RopeStyle::adjacent ? 2 * i + 1 : i + half;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

class RopeTable {
public:
    RopeTable(int max_tokens, int head_dim) : half_(head_dim / 2), cs_(std::size_t(max_tokens) * std::size_t(head_dim)) {}

    // Angles of `positions` (at most max_tokens; the t-th is apply()'s t); `freq_factors` (head_dim/2
    // values, or nullptr for none) divide each pair's angle as in cpu::rope; cos and sin are multiplied
    // by `mscale` (LongRoPE's attention factor; 1 for every other model).
    void compute(std::span<const int> positions, float base, const float* freq_factors = nullptr, float mscale = 1.0f) {
        for (int t = 0; t < int(positions.size()); ++t)
            for (int i = 0; i < half_; ++i) {
                const float theta = rope_angle(positions[std::size_t(t)], i, 2 * half_, base, freq_factors);
                cs_[index(t, i)] = std::cos(theta) * mscale;
                cs_[index(t, i) + 1] = std::sin(theta) * mscale;
            }
    }

    // The t-th computed position's (cos, sin) pairs, head_dim/2 of them, for rope_rotate.
    const float* angles(int t) const { return &cs_[index(t, 0)]; }
    int half() const { return half_; }

private:
    std::size_t index(int t, int i) const { return (std::size_t(t) * std::size_t(half_) + std::size_t(i)) * 2; }
    int half_;
    std::vector<float> cs_;  // (cos, sin) per position and pair
};

}  // namespace forge::cpu
