#pragma once
// IEEE binary16 and bfloat16 conversions done in software, bit-exact with round-to-nearest-even,
// so every compiler and target (clang on x86 has no _Float16) computes the same values.
#include <bit>
#include <cstdint>

namespace forge {

constexpr float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / nan
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal: normalise the mantissa into an f32 exponent.
    std::uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

constexpr std::uint16_t f32_to_f16(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
    const std::uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u)  // inf stays inf, nan stays a quiet nan
        return sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u);
    if (absx >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504: overflow to inf
    if (absx >= 0x38800000u) {                       // normal half
        const std::uint32_t mant = absx & 0x7fffffu;
        std::uint32_t h = ((absx >> 23) - 112) << 10 | (mant >> 13);
        const std::uint32_t rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carries into the exponent correctly
        return sign | std::uint16_t(h);
    }
    if (absx < 0x33000000u) return sign;  // below half the smallest subnormal: signed zero
    // Subnormal half: shift the full mantissa (with its implicit bit) and round to nearest even.
    const std::uint32_t e = absx >> 23;
    const std::uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // 14..24
    std::uint32_t h = mant >> shift;
    const std::uint32_t rest = mant & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
    return sign | std::uint16_t(h);
}

constexpr float bf16_to_f32(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

constexpr std::uint16_t f32_to_bf16(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x40u);  // quiet nan
    return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// Rounds a float through f16, as an f16 KV cache or f16 activations do.
constexpr float round_f16(float f) { return f16_to_f32(f32_to_f16(f)); }

}  // namespace forge
