#pragma once
// RMSNorm: out = x / sqrt(mean(x^2) + eps) * weight. The sum of squares is kept in double-free f32 with
// one accumulator, as llama.cpp does, so results match it closely.
#include <cmath>

namespace forge::cpu {

inline void rmsnorm(const float* x, const float* weight, float* out, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / float(n) + eps);
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

}  // namespace forge::cpu
