#pragma once
// y = W·x for one token (decode) or many (prefill). Each weight row is decoded to f32 once and then
// dotted with every token's activations, so prefill reads the weights once per batch, not once per
// token — and a token's result is bit-identical whichever entry point computed it.
#include <cstddef>
#include <vector>

#include "forge/cpu/thread_pool.hpp"
#include "forge/cpu/weight_view.hpp"
#include "forge/quant/row.hpp"

namespace forge::cpu {

// Eight independent partial sums let the compiler vectorise without reassociating a single chain.
inline float dot(const float* a, const float* b, int n) {
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
    for (; i < n; ++i) acc[0] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Y[t][r] = dot(W[r], X[t]) for t < n_tokens; X rows are `x_stride` floats apart, Y rows `y_stride`.
inline void matmul(const WeightView& w, const float* x, int n_tokens, int x_stride, float* y, int y_stride,
                   ThreadPool& pool) {
    pool.parallel_for(std::size_t(w.rows), [&](std::size_t begin, std::size_t end) {
        thread_local std::vector<float> row;  // grows once per thread, then reused every call
        if (row.size() < std::size_t(w.cols)) row.resize(std::size_t(w.cols));
        for (std::size_t r = begin; r < end; ++r) {
            const float* wr;
            if (w.type == DType::F32) {
                wr = reinterpret_cast<const float*>(w.row(int(r)));
            } else {
                dequantize_row(w.type, w.row(int(r)), row.data(), std::size_t(w.cols));
                wr = row.data();
            }
            for (int t = 0; t < n_tokens; ++t)
                y[std::size_t(t) * std::size_t(y_stride) + r] = dot(wr, x + std::size_t(t) * std::size_t(x_stride), w.cols);
        }
    });
}

}  // namespace forge::cpu
