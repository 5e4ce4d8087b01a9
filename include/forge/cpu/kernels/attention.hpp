#pragma once
// attend_head with vector f16 conversion and a vector exp: the same computation as cpu::attend_head
// (scores, softmax, weighted sum of V), each K and V row converted and used in one pass, four rows at a
// time where the instruction set has a four-row form.
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
    const std::uint16_t* k0 = k + std::size_t(first) * row + col;
    const std::uint16_t* v0 = v + std::size_t(first) * row + col;
    constexpr bool kFours = requires { Ops::dot4(qh, k0, row, 0, scores); };
    int j = 0;
    if constexpr (kFours)
        for (; j + 4 <= n; j += 4) Ops::dot4(qh, k0 + std::size_t(j) * row, row, s.head_dim, scores + j);
    for (; j < n; ++j) scores[j] = Ops::dot(qh, k0 + std::size_t(j) * row, s.head_dim);
    for (j = 0; j < n; ++j) scores[j] *= scale;
    softmax_fast(scores, n);
    float* oh = out + h * s.head_dim;
    for (int i = 0; i < s.head_dim; ++i) oh[i] = 0.0f;
    j = 0;
    if constexpr (kFours)
        for (; j + 4 <= n; j += 4) Ops::axpy4(scores + j, v0 + std::size_t(j) * row, row, oh, s.head_dim);
    for (; j < n; ++j) Ops::axpy(scores[j], v0 + std::size_t(j) * row, oh, s.head_dim);
}

}  // namespace forge::cpu
