// Kernel throughput: mat-vec (decode) and GEMM (prefill) per weight type with the compiled-for
// instruction set and the portable fallback, attention over a KV cache, thread-pool dispatch, and the
// machine's memory read bandwidth (the bound decode speed is judged against). Counters: bytes/s of
// weights streamed, FLOP/s (2 per multiply-add).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "forge/gguf/synthetic_model.hpp"
#include "forge/cpu/kernels/attention.hpp"
#include "forge/cpu/kernels/gemm.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q4_1.hpp"
#include "forge/quant/q5.hpp"

namespace {

using namespace forge;

int bench_threads() {
    if (const char* t = std::getenv("FORGE_BENCH_THREADS")) return std::max(1, std::atoi(t));
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

std::vector<float> random_floats(std::size_t n) {
    gguf::Rng rng(3);
    std::vector<float> v(n);
    for (auto& x : v) x = rng.uniform();
    return v;
}

// Random weights of a type the synthetic models do not use. Blocks: random codes and sub-block scales, the f16
// scales (random bits would include NaNs and infinities) set to a small value.
std::vector<std::byte> random_blocks(DType type, int rows, int cols, gguf::Rng& rng) {
    std::vector<std::byte> out(std::size_t(rows) * row_bytes(type, std::size_t(cols)));
    if (type == DType::BF16) {
        for (std::size_t i = 0; i < out.size(); i += 2) {
            const std::uint16_t h = f32_to_bf16(rng.uniform() * 0.05f);
            std::memcpy(&out[i], &h, 2);
        }
        return out;
    }
    for (auto& b : out) b = std::byte(rng.next() & 0xff);
    const std::uint16_t d = f32_to_f16(0.01f);
    const auto set = [&]<class B>(B*, auto... fields) {
        for (std::size_t i = 0; i < out.size(); i += sizeof(B)) ((reinterpret_cast<B*>(&out[i])->*fields = d), ...);
    };
    switch (type) {
        case DType::Q4_1: set((BlockQ4_1*)nullptr, &BlockQ4_1::d, &BlockQ4_1::m); break;
        case DType::Q5_0: set((BlockQ5_0*)nullptr, &BlockQ5_0::d); break;
        case DType::Q5_1: set((BlockQ5_1*)nullptr, &BlockQ5_1::d, &BlockQ5_1::m); break;
        case DType::Q2_K: set((BlockQ2_K*)nullptr, &BlockQ2_K::d, &BlockQ2_K::dmin); break;
        case DType::Q3_K: set((BlockQ3_K*)nullptr, &BlockQ3_K::d); break;
        case DType::Q4_K: set((BlockQ4_K*)nullptr, &BlockQ4_K::d, &BlockQ4_K::dmin); break;
        case DType::Q5_K: set((BlockQ5_K*)nullptr, &BlockQ5_K::d, &BlockQ5_K::dmin); break;
        case DType::Q6_K: set((BlockQ6_K*)nullptr, &BlockQ6_K::d); break;
        default: throw Error("no random blocks for " + std::string(dtype_name(type)));
    }
    return out;
}

// args: rows, cols, tokens (1 = decode's mat-vec)
template <DType T, class Isa>
void BM_Gemm(benchmark::State& state) {
    const int rows = int(state.range(0)), cols = int(state.range(1)), tokens = int(state.range(2));
    gguf::Rng rng(1);
    const bool written = T == DType::F32 || T == DType::F16 || T == DType::Q8_0 || T == DType::Q4_0;
    const auto w = written ? gguf::random_matrix(T, std::uint64_t(rows), std::uint64_t(cols), rng) : random_blocks(T, rows, cols, rng);
    const cpu::WeightView view{w.data(), T, rows, cols};
    const auto x = random_floats(std::size_t(tokens) * std::size_t(cols));
    std::vector<float> y(std::size_t(tokens) * std::size_t(rows));
    cpu::ThreadPool pool(bench_threads());
    cpu::GemmInput in;
    for (auto _ : state) {
        in.set(x.data(), tokens, cols, cols);  // quantizing the activations is part of the cost
        cpu::gemm<Isa>(view, in, y.data(), rows, pool);
        benchmark::DoNotOptimize(y.data());
    }
    const double it = double(state.iterations());
    state.counters["weights_B/s"] = benchmark::Counter(it * double(w.size()), benchmark::Counter::kIsRate);
    state.counters["FLOP/s"] = benchmark::Counter(it * 2.0 * rows * cols * tokens, benchmark::Counter::kIsRate);
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
    // TinyLlama's FFN up (5632x2048) and down (2048x5632), SmolLM2's FFN up (1536x576): decode and prefill.
    for (const auto& [r, c] : {std::pair{5632, 2048}, {2048, 5632}, {1536, 576}})
        for (const int t : {1, 64}) b->Args({r, c, t});
    b->UseRealTime();
}

BENCHMARK(BM_Gemm<DType::Q8_0, cpu::isa::Native>)->Apply(gemm_shapes);
BENCHMARK(BM_Gemm<DType::Q4_0, cpu::isa::Native>)->Apply(gemm_shapes);
BENCHMARK(BM_Gemm<DType::F16, cpu::isa::Native>)->Apply(gemm_shapes);
BENCHMARK(BM_Gemm<DType::F32, cpu::isa::Native>)->Apply(gemm_shapes);
// Prefill batches long enough for the AMX tiles (amx::kMinTokens<W>) where the CPU has them: Qwen2.5-0.5B's
// FFN up (4864x896) and down (896x4864), 512 tokens; for the K-quants, whose rows are whole 256-value
// super-blocks, TinyLlama's (5632x2048, 2048x5632).
void long_batch_shapes(benchmark::internal::Benchmark* b) {
    for (const auto& [r, c] : {std::pair{4864, 896}, {896, 4864}}) b->Args({r, c, 512});
    b->UseRealTime();
}
void long_batch_k_shapes(benchmark::internal::Benchmark* b) {
    for (const auto& [r, c] : {std::pair{5632, 2048}, {2048, 5632}}) b->Args({r, c, 512});
    b->UseRealTime();
}
BENCHMARK(BM_Gemm<DType::Q8_0, cpu::isa::Native>)->Apply(long_batch_shapes);
BENCHMARK(BM_Gemm<DType::Q4_0, cpu::isa::Native>)->Apply(long_batch_shapes);
BENCHMARK(BM_Gemm<DType::Q5_0, cpu::isa::Native>)->Apply(long_batch_shapes);
BENCHMARK(BM_Gemm<DType::Q4_K, cpu::isa::Native>)->Apply(long_batch_k_shapes);
BENCHMARK(BM_Gemm<DType::Q6_K, cpu::isa::Native>)->Apply(long_batch_k_shapes);
BENCHMARK(BM_Gemm<DType::Q8_0, cpu::isa::Portable>)->Args({5632, 2048, 1})->Args({5632, 2048, 64})->UseRealTime();
BENCHMARK(BM_Gemm<DType::Q4_0, cpu::isa::Portable>)->Args({5632, 2048, 1})->Args({5632, 2048, 64})->UseRealTime();

// ggml's other block types, as published files mix them (Q4_K_M: Q4_K and Q6_K, Q5_0 where a row is not a
// whole number of 256-value blocks): decode shapes of a 2048-wide model, and one prefill batch.
void block_type_shapes(benchmark::internal::Benchmark* b) {
    for (const auto& [r, c] : {std::pair{2048, 2048}, {5632, 2048}}) b->Args({r, c, 1});
    b->Args({5632, 2048, 64});
    b->UseRealTime();
}
BENCHMARK(BM_Gemm<DType::Q4_K, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q6_K, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q5_0, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q5_K, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q3_K, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q2_K, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q4_1, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q5_1, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::BF16, cpu::isa::Native>)->Apply(block_type_shapes);
BENCHMARK(BM_Gemm<DType::Q8_0, cpu::isa::Native>)->Args({2048, 2048, 1})->UseRealTime();
BENCHMARK(BM_Gemm<DType::Q4_0, cpu::isa::Native>)->Args({2048, 2048, 1})->UseRealTime();
BENCHMARK(BM_Gemm<DType::Q4_K, cpu::isa::Portable>)->Args({5632, 2048, 1})->UseRealTime();
BENCHMARK(BM_Gemm<DType::Q6_K, cpu::isa::Portable>)->Args({5632, 2048, 1})->UseRealTime();

// One query token over `positions` cached positions, every head (TinyLlama: 32 heads, 4 KV heads, 64 dims).
template <class Isa>
void BM_Attention(benchmark::State& state) {
    const int positions = int(state.range(0));
    const cpu::AttentionShape s{32, 4, 64, 0.125f};
    const auto q = random_floats(std::size_t(s.n_heads * s.head_dim));
    std::vector<std::uint16_t> k(std::size_t(positions) * std::size_t(s.kv_dim())), v(k.size());
    const auto f = random_floats(k.size());
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = v[i] = f32_to_f16(f[i]);
    std::vector<float> scores(static_cast<std::size_t>(positions)), out(q.size());
    for (auto _ : state) {
        for (int h = 0; h < s.n_heads; ++h)
            cpu::attend_head_fast<Isa>(s, h, q.data(), k.data(), v.data(), 0, positions - 1, scores.data(), out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["KV_B/s"] = benchmark::Counter(double(state.iterations()) * double(s.n_heads) * positions * s.head_dim * 4.0,
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention<cpu::isa::Native>)->Arg(64)->Arg(512);
BENCHMARK(BM_Attention<cpu::isa::Portable>)->Arg(512);

// One empty parallel_for: the fixed cost a decode step pays per matmul.
void BM_PoolDispatch(benchmark::State& state) {
    cpu::ThreadPool pool(int(state.range(0)));
    std::vector<int> sink(64);
    for (auto _ : state) pool.parallel_for(sink.size(), [&](std::size_t b, std::size_t) { sink[b] += 1; });
    benchmark::DoNotOptimize(sink.data());
}
BENCHMARK(BM_PoolDispatch)->Arg(2)->UseRealTime();

// Reads a 1 GiB buffer split between `threads` threads: the read bandwidth decode is bound by.
void BM_MemoryReadBandwidth(benchmark::State& state) {
    const std::size_t n = (std::size_t(1) << 30) / sizeof(std::uint64_t);
    std::vector<std::uint64_t> buf(n);
    std::iota(buf.begin(), buf.end(), std::uint64_t(1));
    cpu::ThreadPool pool(int(state.range(0)));
    std::vector<std::uint64_t> sums(std::size_t(pool.size()) * 8);
    for (auto _ : state) {
        const int threads = pool.size();
        pool.run(threads, [&](int t, int) {
            const std::size_t b = n * std::size_t(t) / std::size_t(threads), e = n * std::size_t(t + 1) / std::size_t(threads);
            std::uint64_t s = 0;
            for (std::size_t i = b; i < e; ++i) s += buf[i];
            sums[std::size_t(t) * 8] = s;
        });
        benchmark::DoNotOptimize(sums.data());
    }
    state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n * sizeof(std::uint64_t)));
}
BENCHMARK(BM_MemoryReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
