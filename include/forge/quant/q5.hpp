#pragma once
// Q5_0 and Q5_1, read only: llama.cpp's K-quant files store them where a row is not a whole number of 256-wide
// K-quant blocks (Qwen2.5-0.5B's 896 columns, for one). 32 weights per block; bit j of qh is weight j's fifth
// bit, the low nibbles as in Q4_0 (byte j: weight j low, weight j + 16 high). Dequantized as ggml does:
// Q5_0 value = (q - 16) * d, Q5_1 value = q * d + m.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forge/core/half.hpp"

namespace forge {

struct BlockQ5_0 {
    std::uint16_t d;
    std::uint8_t qh[4];
    std::uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22 && alignof(BlockQ5_0) == 2, "BlockQ5_0 must match ggml's 22-byte layout");

struct BlockQ5_1 {
    std::uint16_t d;
    std::uint16_t m;
    std::uint8_t qh[4];
    std::uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24 && alignof(BlockQ5_1) == 2, "BlockQ5_1 must match ggml's 24-byte layout");

// The 32 five-bit codes of a block, in element order.
inline void q5_codes(const std::uint8_t* qh_bytes, const std::uint8_t* qs, int* q) {
    std::uint32_t qh;
    std::memcpy(&qh, qh_bytes, sizeof qh);
    for (int j = 0; j < 16; ++j) {
        q[j] = (qs[j] & 0x0F) | int(((qh >> j) << 4) & 0x10);
        q[j + 16] = (qs[j] >> 4) | int((qh >> (j + 12)) & 0x10);
    }
}

inline void dequantize_row_q5_0(const BlockQ5_0* in, float* y, std::size_t n) {
    int q[32];
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const float d = f16_to_f32(in[b].d);
        q5_codes(in[b].qh, in[b].qs, q);
        for (int j = 0; j < 32; ++j) y[j] = float(q[j] - 16) * d;
    }
}

inline void dequantize_row_q5_1(const BlockQ5_1* in, float* y, std::size_t n) {
    int q[32];
    for (std::size_t b = 0; b < n / 32; ++b, y += 32) {
        const float d = f16_to_f32(in[b].d), m = f16_to_f32(in[b].m);
        q5_codes(in[b].qh, in[b].qs, q);
        for (int j = 0; j < 32; ++j) y[j] = float(q[j]) * d + m;
    }
}

}  // namespace forge
