#pragma once
// attend_head with vector f16 conversion and a vector exp: the same computation as cpu::attend_head
// (scores, softmax, weighted sum of V), each K and V row converted and used in one pass, four rows at a
// time where the instruction set has a four-row form. attend_tokens_fast does it for four consecutive
// query tokens at once, converting each row once for the four.
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
    const float scale = s.scale;
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

// attend_head_fast for head h of four consecutive query tokens (query rows `q_stride` apart, outputs
// `out_stride` apart, scores `scores_stride` apart) whose positions end at last, last + 1, last + 2 and
// last + 3, all from `first`. Where the instruction set has the four-query forms, each K and V row is
// converted once for the four; otherwise this is attend_head_fast four times. Either way every output
// is attend_head_fast's bits, so prefill and decode agree exactly.
template <class Isa = isa::Native>
void attend_tokens_fast(const AttentionShape& s, int h, const float* q, std::size_t q_stride, const std::uint16_t* k,
                        const std::uint16_t* v, int first, int last, float* scores, std::size_t scores_stride, float* out,
                        std::size_t out_stride) {
    using Ops = F16Rows<Isa>;
    if constexpr (!requires { Ops::dot_queries4(q, q_stride, k, 0, scores); }) {
        for (int r = 0; r < 4; ++r)
            attend_head_fast<Isa>(s, h, q + std::size_t(r) * q_stride, k, v, first, last + r, scores, out + std::size_t(r) * out_stride);
    } else {
        const int kvh = h / (s.n_heads / s.n_kv_heads), hd = s.head_dim;
        const float scale = s.scale;
        const std::size_t row = std::size_t(s.kv_dim()), col = std::size_t(kvh) * std::size_t(hd), head = std::size_t(h) * std::size_t(hd);
        const std::uint16_t* k0 = k + std::size_t(first) * row + col;
        const int n = last - first + 1;  // token r sees n + r positions
        const int count[4] = {n, n + 1, n + 2, n + 3};
        // Rows in fours for all four queries (a query's scores past its count are written, never read),
        // the last (n + 3) % 4 one at a time.
        int j = 0;
        for (; j + 4 <= n + 3; j += 4) Ops::dot4_queries4(q + head, q_stride, k0 + std::size_t(j) * row, row, hd, scores + j, scores_stride);
        float dots[4];
        for (; j < n + 3; ++j) {
            Ops::dot_queries4(q + head, q_stride, k0 + std::size_t(j) * row, hd, dots);
            for (int r = 0; r < 4; ++r)
                if (j < count[r]) scores[std::size_t(r) * scores_stride + std::size_t(j)] = dots[r];
        }
        for (int r = 0; r < 4; ++r) {
            float* sc = scores + std::size_t(r) * scores_stride;
            for (int j = 0; j < count[r]; ++j) sc[j] *= scale;
            softmax_fast(sc, count[r]);
        }
        Ops::weighted_sum4(scores, scores_stride, count, v + std::size_t(first) * row + col, row, out + head, out_stride, hd);
    }
}

}  // namespace forge::cpu
