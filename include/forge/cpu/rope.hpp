#pragma once
// Rotary position embedding over `n_heads` heads of `head_dim` values at position `pos`.
// RopeStyle::adjacent rotates pairs (2i, 2i+1); RopeStyle::neox rotates (i, i + head_dim/2).
// Pair i turns by pos * base^(-2i/head_dim) / freq_factors[i]. The factors (head_dim/2 of them) are the
// llama3 RoPE scaling of Llama 3.1 / 3.2, which GGUFs carry as `rope_freqs.weight` and llama.cpp applies
// the same way (ggml_rope_ext's freq_factors); nullptr means none, the same as all ones. LongRoPE also
// multiplies cos and sin by an attention factor `mscale` (ggml's attn_factor), 1 everywhere else.
#include <cmath>

#include "forge/traits/model_shape.hpp"

namespace forge::cpu {

// The angle pair i of a head turns by at position `pos`: the one formula cpu::rope and RopeTable share.
inline float rope_angle(int pos, int i, int head_dim, float base, const float* freq_factors) {
    float theta = float(pos) * std::pow(base, -2.0f * float(i) / float(head_dim));
    if (freq_factors) theta /= freq_factors[i];
    return theta;
}

inline void rope(float* v, int n_heads, int head_dim, int pos, float base, RopeStyle style,
                 const float* freq_factors = nullptr, float mscale = 1.0f) {
    const int half = head_dim / 2;
    for (int i = 0; i < half; ++i) {
        const float theta = rope_angle(pos, i, head_dim, base, freq_factors);
        const float c = std::cos(theta) * mscale, s = std::sin(theta) * mscale;
        const int a = style == RopeStyle::adjacent ? 2 * i : i;
        const int b = style == RopeStyle::adjacent ? 2 * i + 1 : i + half;
        for (int h = 0; h < n_heads; ++h) {
            float* x = v + h * head_dim;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

}  // namespace forge::cpu
