#pragma once
// Q4_1: 32 weights as 4-bit codes with an f16 scale and an f16 offset, value = q * d + m. Byte j holds element j
// in its low nibble and element j + 16 in its high nibble, as in Q4_0. Bit-exact with ggml's block_q4_1; read
// only (dequantized as ggml's dequantize_row_q4_1 does).
#include <cstddef>
#include <cstdint>

#include "forge/core/half.hpp"

namespace forge {

struct BlockQ4_1 {
    std::uint16_t d;  // f16 scale
    std::uint16_t m;  // f16 offset (the block's minimum)
    std::uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20 && alignof(BlockQ4_1) == 2, "BlockQ4_1 must match ggml's 20-byte layout");

inline void dequantize_row_q4_1(const BlockQ4_1* in, float* y, std::size_t n) {
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const float d = f16_to_f32(in[b].d), m = f16_to_f32(in[b].m);
        for (int j = 0; j < 16; ++j) {
            y[j] = float(in[b].qs[j] & 0x0F) * d + m;
            y[j + 16] = float(in[b].qs[j] >> 4) * d + m;
        }
    }
}

}  // namespace forge
