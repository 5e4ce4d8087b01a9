#pragma once
// A GEMM case of random values (normal, mean 0, deviation 1): weights [rows][cols] quantized to a type,
// and float inputs [tokens][cols], drawn in that order from the generator given.
#include <cstddef>
#include <random>
#include <vector>

#include "forge/cpu/weight_view.hpp"
#include "forge/quant/row.hpp"

namespace forge::test {

struct RandomGemmCase {
    std::vector<std::byte> weights;  // rows of row_bytes(type, cols)
    std::vector<float> inputs;       // [tokens][cols]
    cpu::WeightView view;            // of `weights`
};

inline RandomGemmCase random_gemm_case(DType type, int rows, int cols, int tokens, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> w(std::size_t(rows) * std::size_t(cols));
    RandomGemmCase c{{}, std::vector<float>(std::size_t(tokens) * std::size_t(cols)), {}};
    for (auto& v : w) v = dist(rng);
    for (auto& v : c.inputs) v = dist(rng);
    const std::size_t row = row_bytes(type, std::size_t(cols));
    c.weights.resize(std::size_t(rows) * row);
    for (int r = 0; r < rows; ++r) quantize_row(type, &w[std::size_t(r) * std::size_t(cols)], &c.weights[std::size_t(r) * row], std::size_t(cols));
    c.view = cpu::WeightView{c.weights.data(), type, rows, cols};
    return c;
}

}  // namespace forge::test
