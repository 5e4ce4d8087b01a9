#pragma once
// GEMM cases of random values: weights [rows][cols] of a type, and float inputs [tokens][cols], drawn in
// that order from the generator given.
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "block_fields.hpp"
#include "forge/core/half.hpp"
#include "forge/cpu/weight_view.hpp"
#include "forge/quant/row.hpp"

namespace forge::test {

// Weights [rows][cols] of a type: normal values (mean 0, deviation 1) quantized where forge writes the
// type; else random bytes (every code and packed sub-block scale a block can hold) with small random f16
// scales in their fields (random bits would include NaNs).
inline std::vector<std::byte> random_weights(DType type, int rows, int cols, std::mt19937& rng) {
    std::vector<std::byte> out(std::size_t(rows) * row_bytes(type, std::size_t(cols)));
    if (const auto fields = f16_fields(type); !fields.empty()) {
        for (auto& b : out) b = std::byte(rng() & 0xff);
        std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
        const std::size_t block = dtype_info(type).block_bytes;
        for (std::size_t b = 0; b < out.size(); b += block)
            for (const int f : fields) {
                const std::uint16_t h = f32_to_f16(scale(rng));
                std::memcpy(&out[b + std::size_t(f)], &h, 2);
            }
        return out;
    }
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> w(std::size_t(rows) * std::size_t(cols));
    for (auto& v : w) v = dist(rng);
    const std::size_t row = row_bytes(type, std::size_t(cols));
    for (int r = 0; r < rows; ++r) quantize_row(type, &w[std::size_t(r) * std::size_t(cols)], &out[std::size_t(r) * row], std::size_t(cols));
    return out;
}

struct RandomGemmCase {
    std::vector<std::byte> weights;  // rows of row_bytes(type, cols)
    std::vector<float> inputs;       // [tokens][cols]
    cpu::WeightView view;            // of `weights`
};

// random_weights, then float inputs [tokens][cols] (normal, mean 0, deviation 1) from the same generator.
inline RandomGemmCase random_gemm_case(DType type, int rows, int cols, int tokens, std::mt19937& rng) {
    RandomGemmCase c{random_weights(type, rows, cols, rng), std::vector<float>(std::size_t(tokens) * std::size_t(cols)), {}};
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (auto& v : c.inputs) v = dist(rng);
    c.view = cpu::WeightView{c.weights.data(), type, rows, cols};
    return c;
}

}  // namespace forge::test
