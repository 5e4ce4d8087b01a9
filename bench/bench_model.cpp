// End-to-end prefill and decode speed on the shapes of docs/performance.md, through compiled traits
// (Model<Traits>) and the runtime-shape path (Model<Dynamic>), on seeded synthetic GGUFs written into
// the build tree on first use. Counters (per wall-clock second): tok/s, and for decode the weight bytes
// streamed; decode_share_of_bandwidth says how close decode comes to the memory-bandwidth bound.
//   bench_model [--benchmark_filter=TinyLlama] ; FORGE_BENCH_THREADS=N overrides the thread count.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bench_shapes.hpp"
#include "forge/cpu/thread_pool.hpp"
#include "forge/model/model.hpp"

namespace {

using namespace forge;

int bench_threads() {
    if (const char* t = std::getenv("FORGE_BENCH_THREADS")) return std::max(1, std::atoi(t));
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

std::vector<std::int32_t> random_tokens(int n, int vocab) {
    gguf::Rng rng(7);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n));
    for (auto& v : t) v = std::int32_t(rng.next() % std::uint64_t(vocab));
    return t;
}

// ppN: N prompt tokens through prefill from an empty context.
template <class Traits, class Path>
void BM_Prefill(benchmark::State& state) {
    const int n = int(state.range(0));
    Model<Path> m(gguf::File::open(bench::model_file<Traits>(FORGE_BENCH_MODEL_DIR)), {.context = n, .threads = bench_threads()});
    const auto tokens = random_tokens(n, Traits::shape.vocab);
    m.prefill(tokens);  // warm-up: faults the mapping in
    for (auto _ : state) {
        m.reset();
        benchmark::DoNotOptimize(m.prefill(tokens).data());
    }
    state.counters["tok/s"] = benchmark::Counter(double(n) * double(state.iterations()), benchmark::Counter::kIsRate);
}

// tgN: N tokens decoded one by one from an empty context, as llama-bench's tg test.
template <class Traits, class Path>
void BM_Decode(benchmark::State& state) {
    const int n = int(state.range(0));
    Model<Path> m(gguf::File::open(bench::model_file<Traits>(FORGE_BENCH_MODEL_DIR)), {.context = n, .threads = bench_threads()});
    const auto tokens = random_tokens(n, Traits::shape.vocab);
    for (const auto t : tokens) m.decode(t);
    for (auto _ : state) {
        m.reset();
        for (const auto t : tokens) benchmark::DoNotOptimize(m.decode(t).data());
    }
    const double toks = double(n) * double(state.iterations());
    state.counters["tok/s"] = benchmark::Counter(toks, benchmark::Counter::kIsRate);
    state.counters["weights_B/s"] = benchmark::Counter(toks * double(Traits::shape.weight_bytes()), benchmark::Counter::kIsRate);
}

// Decode against the memory-bandwidth bound, on a host whose speed drifts by up to 2x from one minute to
// the next: each iteration times one decode step, then one plain read of the very bytes a step streams
// (every weight matrix; the embedding table only when the output layer reuses it), each thread reading
// its share of every tensor, from the same memory. share = read time / step time: the fraction of the
// bandwidth bound that decode reaches. Weights mapped from the page cache, or read into the process's
// own memory (R).
template <class Traits, Residency R>
void BM_DecodeShareOfBandwidth(benchmark::State& state) {
    const int threads = bench_threads();
    Model<Traits> m(gguf::File::open(bench::model_file<Traits>(FORGE_BENCH_MODEL_DIR), R), {.context = 256, .threads = threads});
    std::vector<std::span<const std::uint64_t>> streamed;
    std::size_t bytes = 0;
    for (const auto& t : m.file().tensors())
        if (t.name != "token_embd.weight" || Traits::shape.tied_embeddings) {
            streamed.emplace_back(reinterpret_cast<const std::uint64_t*>(t.data), t.bytes / sizeof(std::uint64_t));
            bytes += t.bytes;
        }
    std::vector<std::uint64_t> sums(std::size_t(threads) * 8);
    cpu::ThreadPool pool(threads);
    const auto read = [&] {
        pool.run(threads, [&](int t, int) {
            std::uint64_t sum = 0;
            for (const auto& w : streamed) {
                const std::size_t b = w.size() * std::size_t(t) / std::size_t(threads), e = w.size() * std::size_t(t + 1) / std::size_t(threads);
                for (std::size_t i = b; i < e; ++i) sum += w[i];
            }
            sums[std::size_t(t) * 8] = sum;
        });
        benchmark::DoNotOptimize(sums.data());
    };
    const auto tokens = random_tokens(200, Traits::shape.vocab);
    using clock = std::chrono::steady_clock;
    double step = 0, pass = 0;
    std::size_t next = 0;
    m.decode(tokens[0]);
    read();
    for (auto _ : state) {
        if (next == tokens.size()) m.reset(), next = 0;
        const auto t0 = clock::now();
        benchmark::DoNotOptimize(m.decode(tokens[next++]).data());
        const auto t1 = clock::now();
        read();
        step += std::chrono::duration<double>(t1 - t0).count();
        pass += std::chrono::duration<double>(clock::now() - t1).count();
    }
    const double n = double(state.iterations());
    state.counters["decode_B/s"] = n * double(bytes) / step;
    state.counters["read_B/s"] = n * double(bytes) / pass;
    state.counters["share"] = pass / step;
}

#define FORGE_BENCH_MODEL(T, PP, TG)                                                                        \
    BENCHMARK(BM_Prefill<T, T>)->Name("prefill/compiled/" + std::string(T::name))->Arg(PP)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3); \
    BENCHMARK(BM_Prefill<T, Dynamic>)->Name("prefill/runtime/" + std::string(T::name))->Arg(PP)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3); \
    BENCHMARK(BM_Decode<T, T>)->Name("decode/compiled/" + std::string(T::name))->Arg(TG)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3); \
    BENCHMARK(BM_Decode<T, Dynamic>)->Name("decode/runtime/" + std::string(T::name))->Arg(TG)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3)

using namespace forge::bench;

FORGE_BENCH_MODEL(SmolQ8, 128, 64);
FORGE_BENCH_MODEL(SmolQ4, 128, 64);
FORGE_BENCH_MODEL(Qwen, 512, 64);
FORGE_BENCH_MODEL(TinyQ4, 128, 64);
BENCHMARK(BM_Prefill<TinyQ4, TinyQ4>)->Name("prefill/compiled/" + std::string(TinyQ4::name))->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
FORGE_BENCH_MODEL(TinyQ8, 128, 64);
#define FORGE_BENCH_SHARE(T, ITERATIONS)                                                                     \
    BENCHMARK(BM_DecodeShareOfBandwidth<T, Residency::page_cache>)->Name("decode_share_of_bandwidth/" + std::string(T::name)) \
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(ITERATIONS);                              \
    BENCHMARK(BM_DecodeShareOfBandwidth<T, Residency::own_memory>)->Name("decode_share_of_bandwidth/" + std::string(T::name) + "/no-mmap") \
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(ITERATIONS)
FORGE_BENCH_SHARE(TinyQ4, 64);
FORGE_BENCH_SHARE(TinyQ8, 64);
FORGE_BENCH_SHARE(SmolQ4, 256);
FORGE_BENCH_SHARE(Qwen, 64);
// The 8B shape (a 4.5 GB file, written on first use): the runtime-shape path only, as forge bench runs a
// file without the zoo, and decode against the bandwidth bound, the case for machines with many cores.
BENCHMARK(BM_Prefill<Llama8, Dynamic>)->Name("prefill/runtime/" + std::string(Llama8::name))->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Decode<Llama8, Dynamic>)->Name("decode/runtime/" + std::string(Llama8::name))->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
FORGE_BENCH_SHARE(Llama8, 16);

}  // namespace
