#pragma once
// attend_head with vector f16 conversion and a vector exp: the same computation as cpu::attend_head
// (scores, softmax, weighted sum of V), each K and V row converted and used in one pass.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "forge/cpu/attention.hpp"
#include "forge/cpu/kernels/elementwise.hpp"
#include "forge/cpu/kernels/f16_rows.hpp"

namespace forge::cpu {

template <class Isa = isa::Native>
void attend_head_fast(const AttentionShape& s, int h, const float* q, const std::uint16_t* k, const std::uint16_t* v,
                      int first, int last, float* scores, float* out) {
    using Ops = F16Rows<Isa>;
    const int kvh = h / (s.n_heads / s.n_kv_heads);
    const float scale = 1.0f / std::sqrt(float(s.head_dim));
    const float* qh = q + h * s.head_dim;
    const std::size_t row = std::size_t(s.kv_dim());
    const std::size_t col = std::size_t(kvh) * std::size_t(s.head_dim);
    const int n = last - first + 1;
    for (int j = 0; j < n; ++j) scores[j] = Ops::dot(qh, k + std::size_t(first + j) * row + col, s.head_dim) * scale;
    softmax_fast(scores, n);
    float* oh = out + h * s.head_dim;
    for (int i = 0; i < s.head_dim; ++i) oh[i] = 0.0f;
    for (int j = 0; j < n; ++j) Ops::axpy(scores[j], v + std::size_t(first + j) * row + col, oh, s.head_dim);
}

}  // namespace forge::cpu
