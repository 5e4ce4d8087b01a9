#pragma once
// The forward pass's element-wise steps: SwiGLU's gate out = silu(gate) * up (silu(x) = x / (1 + e^-x)),
// the residual add, and scaling by a model's multiplier.
#include <cmath>

namespace forge::cpu {

inline void silu_mul(const float* gate, const float* up, float* out, int n) {
    for (int i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

inline void add_inplace(float* x, const float* y, int n) {
    for (int i = 0; i < n; ++i) x[i] += y[i];
}

inline void scale_inplace(float* x, float factor, int n) {
    for (int i = 0; i < n; ++i) x[i] *= factor;
}

}  // namespace forge::cpu
