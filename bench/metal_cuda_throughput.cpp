// forge's Metal kernels on an NVIDIA GPU through the CUDA executor: how much of the device's memory
// bandwidth the decode kernels reach (mat-vec, split-K attention, softmax_sample), and how much of its FP32
// rate the prefill kernels reach (GEMM, flash attention), on the zoo's shapes. A proxy for the kernels' memory behaviour and occupancy: it says nothing
// about speed on Apple GPUs. Run on a machine with an NVIDIA driver and nvcc:
//   metal_cuda_throughput [PEAK_GBPS] [PEAK_FP32_TFLOPS]   (defaults: the H200's 4800 GB/s, 67 TFLOP/s)
// Results go to docs/metal-on-cuda.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "forge/core/half.hpp"
#include "forge/metal/cuda/device.hpp"
#include "forge/metal/launch.hpp"
#include "forge/metal/open.hpp"
#include "forge/quant/row.hpp"

using namespace forge;

namespace {

// A projection: one matrix, or up to three stacked in one launch (a fused QKV or gate/up, read from
// their own places in one buffer as a model's mapped file holds them).
struct Matrix {
    const char* shape;
    int rows, cols;
    std::vector<int> parts;  // the stacked matrices' rows; empty: one matrix
};

// Seconds per call of `launch`, from enough calls to run for about 0.3 s after one warm-up. Calls are
// separated by barriers, as a forward pass's launches are (each rewrites the last one's output).
template <class F>
double seconds_per_call(metal::Device& dev, F&& launch) {
    launch();
    dev.finish();
    using clock = std::chrono::steady_clock;
    int calls = 1;
    for (;;) {
        const auto t0 = clock::now();
        for (int i = 0; i < calls; ++i) {
            launch();
            dev.encoder().barrier();
        }
        dev.finish();
        const double s = std::chrono::duration<double>(clock::now() - t0).count();
        if (s > 0.3) return s / calls;
        calls *= 2;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const double peak_gbps = argc > 1 ? std::atof(argv[1]) : 4800.0;
    const double peak_tflops = argc > 2 ? std::atof(argv[2]) : 67.0;
    if (const std::string why = metal::cuda::jit::unavailable_reason(); !why.empty()) {
        std::fprintf(stderr, "no CUDA executor here: %s\n", why.c_str());
        return 1;
    }
    // Every weight type's kernels in one library (head_dim 128, as the 1B-8B shapes have).
    const ModelShape shape{.vocab = 32, .hidden = 4096, .ffn = 14336, .layers = 1, .heads = 32, .kv_heads = 8, .head_dim = 128,
                           .max_context = 4096};
    std::uint32_t types = 0;
    for (const DType t : metal_src::kKernelDTypes) types |= metal_src::dtype_bit(t);
    const metal::LibraryPtr lib = metal::runtime_library(shape, types);
    auto dev = metal::cuda::make_device("throughput", std::span(lib->kernels.data(), lib->n_kernels), lib->text.view());
    std::printf("device: %.*s; peaks: %.0f GB/s, %.0f FP32 TFLOP/s\n\n", int(dev->name().size()), dev->name().data(), peak_gbps,
                peak_tflops);

    const Matrix matrices[] = {{"SmolLM2-135M ffn", 1536, 576, {}},
                               {"TinyLlama-1.1B ffn", 5632, 2048, {}},
                               {"Llama-3.1-8B qkv", 6144, 4096, {}},
                               {"Llama-3.1-8B fused q+k+v", 6144, 4096, {4096, 1024, 1024}},
                               {"Llama-3.1-8B ffn", 14336, 4096, {}},
                               {"Llama-3.1-8B fused gate+up", 28672, 4096, {14336, 14336}}};
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::printf("| kernel | matrix | type | tokens | time | rate | share of peak |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for (const DType type : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
        for (const Matrix& m : matrices) {
            if (m.cols % int(dtype_info(type).block_elems) != 0) continue;  // K-quant rows are 256-wide blocks
            const std::size_t rb = row_bytes(type, std::size_t(m.cols));
            auto w = dev->new_buffer(rb * std::size_t(m.rows));
            // Quantized random rows where forge writes the type; random bytes (the time is the same) elsewhere.
            std::vector<float> row(std::size_t(m.cols));
            std::uniform_int_distribution<int> byte(0, 255);
            for (int r = 0; r < m.rows; ++r) {
                std::byte* dst = w->contents() + rb * std::size_t(r);
                if (type == DType::F16 || type == DType::Q8_0 || type == DType::Q4_0) {
                    for (auto& v : row) v = normal(rng);
                    quantize_row(type, row.data(), dst, std::size_t(m.cols));
                } else {
                    for (std::size_t i = 0; i < rb; ++i) dst[i] = std::byte(byte(rng));
                }
            }
            for (const int tokens : {1, 512}) {
                const bool use_gemm = tokens > 1;
                if (use_gemm && !is_quantized(type)) continue;
                auto x = dev->new_buffer(std::size_t(tokens) * m.cols * 4), y = dev->new_buffer(std::size_t(tokens) * m.rows * 4);
                for (int i = 0; i < tokens * m.cols; ++i) reinterpret_cast<float*>(x->contents())[i] = normal(rng);
                std::vector<metal::WeightRows> parts;
                std::size_t at = 0;
                for (const int r : m.parts.empty() ? std::vector<int>{m.rows} : m.parts) {
                    parts.push_back({metal::view<std::byte>(*w, at), r});
                    at += rb * std::size_t(r);
                }
                const double s = seconds_per_call(*dev, [&] {
                    if (use_gemm)
                        metal::gemm(dev->encoder(), lib->config, type, parts, m.cols, metal::view<float>(*x), tokens, m.cols,
                                    metal::view<float>(*y), m.rows);
                    else
                        metal::matvec(dev->encoder(), lib->config, type, parts, m.cols, metal::view<float>(*x), tokens, m.cols,
                                      metal::view<float>(*y), m.rows);
                });
                if (use_gemm) {
                    const double tflops = 2.0 * tokens * m.rows * m.cols / s / 1e12;
                    std::printf("| gemm | %s %dx%d | %s | %d | %.3f ms | %.2f TFLOP/s | %.1f%% |\n", m.shape, m.rows, m.cols,
                                std::string(dtype_name(type)).c_str(), tokens, s * 1e3, tflops, 100 * tflops / peak_tflops);
                } else {
                    const double gbps = (double(rb) * m.rows + 4.0 * (m.cols + m.rows)) / s / 1e9;
                    std::printf("| matvec | %s %dx%d | %s | 1 | %.1f us | %.0f GB/s | %.1f%% |\n", m.shape, m.rows, m.cols,
                                std::string(dtype_name(type)).c_str(), s * 1e6, gbps, 100 * gbps / peak_gbps);
                }
            }
        }
    }

    // Attention of Llama-3.1-8B's shape (32 query heads, 8 KV heads, head_dim 128) over an f16 cache of
    // 4096 positions: decode at the last position (bytes: the keys and values read), and a 512-token
    // causal prefill after 512 earlier positions (FLOPs: q·k and p·v over the positions each query sees).
    {
        const int heads = 32, kv_heads = 8, hd = 128, capacity = 4096, kv_dim = kv_heads * hd, tokens = 512, pos0 = 512;
        auto q = dev->new_buffer(std::size_t(tokens) * heads * hd * 4), out = dev->new_buffer(std::size_t(tokens) * heads * hd * 4);
        auto kc = dev->new_buffer(std::size_t(capacity) * kv_dim * 2), vc = dev->new_buffer(std::size_t(capacity) * kv_dim * 2);
        auto partials = dev->new_buffer(metal::flash_decode_partials(heads, hd) * 4);
        for (int i = 0; i < tokens * heads * hd; ++i) reinterpret_cast<float*>(q->contents())[i] = normal(rng);
        for (int i = 0; i < capacity * kv_dim; ++i) {
            reinterpret_cast<std::uint16_t*>(kc->contents())[i] = f32_to_f16(normal(rng));
            reinterpret_cast<std::uint16_t*>(vc->contents())[i] = f32_to_f16(normal(rng));
        }
        const auto K = metal::view<std::uint16_t>(*kc), V = metal::view<std::uint16_t>(*vc);
        const int pos = capacity - 1;
        const double sd = seconds_per_call(*dev, [&] {
            metal::flash_decode(dev->encoder(), lib->config, metal::view<float>(*q), K, V, metal::view<float>(*partials),
                                metal::view<float>(*out), heads, kv_heads, hd, pos, 0, capacity);
        });
        const double gbps = 2.0 * 2.0 * (pos + 1) * kv_dim / sd / 1e9;
        std::printf("| flash_decode | 8B attention, %d positions | f16 cache | 1 | %.1f us | %.0f GB/s | %.1f%% |\n", pos + 1, sd * 1e6,
                    gbps, 100 * gbps / peak_gbps);
        const double sp = seconds_per_call(*dev, [&] {
            metal::flash_prefill(dev->encoder(), lib->config, metal::view<float>(*q), K, V, metal::view<float>(*out), tokens, heads,
                                 kv_heads, hd, heads * hd, heads * hd, pos0, 0, capacity);
        });
        const double seen = double(tokens) * pos0 + double(tokens) * (tokens + 1) / 2;  // keys over all queries
        const double tflops = 4.0 * heads * hd * seen / sp / 1e12;
        std::printf("| flash_prefill | 8B attention, %d after %d | f16 cache | %d | %.3f ms | %.2f TFLOP/s | %.1f%% |\n", tokens, pos0,
                    tokens, sp * 1e3, tflops, 100 * tflops / peak_tflops);
    }
    // A token drawn from Llama-3's 128256 logits: bytes of the logits read.
    {
        const int vocab = 128256;
        auto logits = dev->new_buffer(std::size_t(vocab) * 4), token = dev->new_buffer(4), logprob = dev->new_buffer(4);
        for (int i = 0; i < vocab; ++i) reinterpret_cast<float*>(logits->contents())[i] = normal(rng);
        const double s = seconds_per_call(*dev, [&] {
            metal::softmax_sample(dev->encoder(), metal::view<float>(*logits), metal::view<std::int32_t>(*token),
                                  metal::view<float>(*logprob), vocab, 0.8f, 0.5f);
        });
        const double gbps = 4.0 * vocab / s / 1e9;
        std::printf("| softmax_sample | Llama-3 vocabulary %d | f32 logits | 1 | %.1f us | %.0f GB/s | %.1f%% |\n", vocab, s * 1e6, gbps,
                    100 * gbps / peak_gbps);
    }
    return 0;
}
