#pragma once
// Q4_0: 32 weights as 4-bit codes sharing one f16 scale, value = (q - 8) * d. Byte j holds element j in
// its low nibble and element j + 16 in its high nibble. Bit-exact with ggml's block_q4_0.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "forge/core/half.hpp"

namespace forge {

struct BlockQ4_0 {
    static constexpr int kElems = 32;
    std::uint16_t d;  // f16 scale
    std::uint8_t qs[kElems / 2];
};
static_assert(sizeof(BlockQ4_0) == 18 && alignof(BlockQ4_0) == 2, "BlockQ4_0 must match ggml's 18-byte layout");

// Quantizes n values (a multiple of 32) as ggml's reference quantizer does: the value of largest
// magnitude maps to code 0 (d = max / -8), so the signed extreme is represented exactly.
inline void quantize_row_q4_0(const float* x, BlockQ4_0* out, std::size_t n) {
    for (std::size_t b = 0; b < n / BlockQ4_0::kElems; ++b, x += BlockQ4_0::kElems) {
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < BlockQ4_0::kElems; ++i) {
            if (std::fabs(x[i]) > amax) {
                amax = std::fabs(x[i]);
                max = x[i];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int j = 0; j < BlockQ4_0::kElems / 2; ++j) {
            const auto lo = static_cast<std::uint8_t>(std::min(15, static_cast<int>(x[j] * id + 8.5f)));
            const auto hi = static_cast<std::uint8_t>(std::min(15, static_cast<int>(x[j + 16] * id + 8.5f)));
            out[b].qs[j] = static_cast<std::uint8_t>(lo | (hi << 4));
        }
    }
}

inline void dequantize_row_q4_0(const BlockQ4_0* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / BlockQ4_0::kElems; ++b, y += BlockQ4_0::kElems) {
        const float d = f16_to_f32(in[b].d);
        for (int j = 0; j < BlockQ4_0::kElems / 2; ++j) {
            y[j] = float(int(in[b].qs[j] & 0x0f) - 8) * d;
            y[j + 16] = float(int(in[b].qs[j] >> 4) - 8) * d;
        }
    }
}

}  // namespace forge
