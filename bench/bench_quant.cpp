// Row quantize / dequantize throughput for the weight types forge computes with. Rows are one
// stories-sized FFN row up to a 7B-sized one; bytes processed count the F32 side of the conversion.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "forge/cpu/kernels/block_rows.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/row.hpp"

namespace {

std::vector<float> random_row(std::size_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(n);
    for (auto& v : x) v = dist(rng);
    return x;
}

template <forge::DType T>
void BM_Quantize(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto x = random_row(n);
    std::vector<std::byte> q(forge::row_bytes(T, n));
    for (auto _ : state) {
        forge::quantize_row(T, x.data(), q.data(), n);
        benchmark::DoNotOptimize(q.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * sizeof(float)));
}

template <forge::DType T>
void BM_Dequantize(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto x = random_row(n);
    std::vector<std::byte> q(forge::row_bytes(T, n));
    forge::quantize_row(T, x.data(), q.data(), n);
    std::vector<float> y(n);
    for (auto _ : state) {
        forge::dequantize_row(T, q.data(), y.data(), n);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * sizeof(float)));
}

// The K-quants' activations (Q8_K): the reference (0) against the form the kernels run (1).
void BM_QuantizeActivationsQ8_K(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    const auto x = random_row(n);
    std::vector<forge::BlockQ8_K> q(n / forge::kQK_K);
    for (auto _ : state) {
        if (state.range(1) == 0) forge::quantize_row_q8_K(x.data(), q.data(), n);
        else forge::cpu::quantize_q8_K(x.data(), q.data(), n);
        benchmark::DoNotOptimize(q.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * sizeof(float)));
}

BENCHMARK(BM_QuantizeActivationsQ8_K)->ArgsProduct({{2048, 5632}, {0, 1}});
BENCHMARK(BM_Quantize<forge::DType::Q8_0>)->Arg(192)->Arg(4096)->Arg(11008);
BENCHMARK(BM_Quantize<forge::DType::Q4_0>)->Arg(192)->Arg(4096)->Arg(11008);
BENCHMARK(BM_Dequantize<forge::DType::Q8_0>)->Arg(192)->Arg(4096)->Arg(11008);
BENCHMARK(BM_Dequantize<forge::DType::Q4_0>)->Arg(192)->Arg(4096)->Arg(11008);

}  // namespace
