#pragma once
// In-place numerically stable softmax.
#include <algorithm>
#include <cmath>

namespace forge::cpu {

inline void softmax(float* x, int n) {
    const float m = *std::max_element(x, x + n);
    float sum = 0.0f;
    for (int i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - m));
    const float inv = 1.0f / sum;
    for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace forge::cpu
