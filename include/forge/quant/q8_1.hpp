#pragma once
// Q8_1: the activations Q4_1 and Q5_1 weights are dotted with: 32 int8 codes, an f16 scale d and the f16
// product s = d * (sum of codes), which carries the weights' offset term (m * sum(x) = m * s). Bit-exact with
// ggml's block_q8_1, quantized as llama.cpp's x86 quantize_row_q8_1 does it (codes rounded to nearest-even).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "forge/core/half.hpp"

namespace forge {

struct BlockQ8_1 {
    std::uint16_t d;  // f16 scale
    std::uint16_t s;  // f16 of d * (sum of qs), d unrounded
    std::int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36 && alignof(BlockQ8_1) == 2, "BlockQ8_1 must match ggml's 36-byte layout");

inline void quantize_row_q8_1(const float* x, BlockQ8_1* out, std::size_t n) {
    for (std::size_t b = 0; b < n / 32; ++b, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            // Adding and subtracting 1.5 * 2^23 rounds |v| <= 127 to nearest-even.
            const float v = (x[j] * id + 12582912.0f) - 12582912.0f;
            // A NaN activation (weights that compute NaN, refused at the logits) quantizes to 0, not to UB.
            out[b].qs[j] = static_cast<std::int8_t>(v >= -127.0f && v <= 127.0f ? v : 0.0f);
            sum += out[b].qs[j];
        }
        out[b].d = f32_to_f16(d);
        out[b].s = f32_to_f16(d * float(sum));
    }
}

}  // namespace forge
