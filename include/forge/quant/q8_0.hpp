#pragma once
// Q8_0: 32 weights as int8 sharing one f16 scale, value = q * d. Bit-exact with ggml's block_q8_0.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "forge/core/half.hpp"

namespace forge {

struct BlockQ8_0 {
    static constexpr int kElems = 32;
    std::uint16_t d;  // f16 scale
    std::int8_t qs[kElems];
};
static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2, "BlockQ8_0 must match ggml's 34-byte layout");

// Quantizes n values (a multiple of 32) as ggml's reference quantizer does: d = max|x| / 127.
inline void quantize_row_q8_0(const float* x, BlockQ8_0* out, std::size_t n) {
    for (std::size_t b = 0; b < n / BlockQ8_0::kElems; ++b, x += BlockQ8_0::kElems) {
        float amax = 0.0f;
        for (int i = 0; i < BlockQ8_0::kElems; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int i = 0; i < BlockQ8_0::kElems; ++i) out[b].qs[i] = static_cast<std::int8_t>(std::lround(x[i] * id));
    }
}

inline void dequantize_row_q8_0(const BlockQ8_0* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / BlockQ8_0::kElems; ++b) {
        const float d = f16_to_f32(in[b].d);
        for (int i = 0; i < BlockQ8_0::kElems; ++i) *y++ = float(in[b].qs[i]) * d;
    }
}

}  // namespace forge
