#pragma once
// Qwen2.5 (Qwen), qwen2 architecture: biases on q, k and v, NeoX RoPE. Shapes from each Instruct model's
// config.json on the Hugging Face hub; GGUF context_length is max_position_embeddings (32768 for all four,
// as llama.cpp's converter writes it).
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// After each model, the facts users plan memory with, checked at compile time: weight bytes with every
// matrix in the one type (as forge quantize writes them), the f16 KV cache at the full context, head_dim.

// huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/blob/main/config.json: hidden_size 896, intermediate_size 4864,
// 24 layers, 14 heads, 2 KV heads, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen2_5_0_5B {
    static constexpr std::string_view name = zoo_name<W>("Qwen2.5-0.5B-Q8_0", "Qwen2.5-0.5B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 151936, .hidden = 896, .ffn = 4864, .layers = 24,
                                      .heads = 14, .kv_heads = 2, .head_dim = 64, .max_context = 32768,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .qkv_bias = true, .tied_embeddings = true};
};
static_assert(ModelTraits<Qwen2_5_0_5B<DType::Q8_0>> && ModelTraits<Qwen2_5_0_5B<DType::Q4_0>>);
static_assert(Qwen2_5_0_5B<DType::Q8_0>::shape.weight_bytes() == 525120000u);
static_assert(Qwen2_5_0_5B<DType::Q4_0>::shape.weight_bytes() == 278139392u);
static_assert(Qwen2_5_0_5B<DType::Q8_0>::shape.kv_cache_bytes(Qwen2_5_0_5B<DType::Q8_0>::shape.max_context) == 402653184u);
static_assert(Qwen2_5_0_5B<DType::Q8_0>::shape.head_dim == 64);

// huggingface.co/Qwen/Qwen2.5-1.5B-Instruct/blob/main/config.json: hidden_size 1536, intermediate_size 8960,
// 28 layers, 12 heads, 2 KV heads, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen2_5_1_5B {
    static constexpr std::string_view name = zoo_name<W>("Qwen2.5-1.5B-Q8_0", "Qwen2.5-1.5B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 151936, .hidden = 1536, .ffn = 8960, .layers = 28,
                                      .heads = 12, .kv_heads = 2, .head_dim = 128, .max_context = 32768,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .qkv_bias = true, .tied_embeddings = true};
};
static_assert(ModelTraits<Qwen2_5_1_5B<DType::Q8_0>> && ModelTraits<Qwen2_5_1_5B<DType::Q4_0>>);
static_assert(Qwen2_5_1_5B<DType::Q8_0>::shape.weight_bytes() == 1640622080u);
static_assert(Qwen2_5_1_5B<DType::Q4_0>::shape.weight_bytes() == 868837376u);
static_assert(Qwen2_5_1_5B<DType::Q8_0>::shape.kv_cache_bytes(Qwen2_5_1_5B<DType::Q8_0>::shape.max_context) == 939524096u);
static_assert(Qwen2_5_1_5B<DType::Q8_0>::shape.head_dim == 128);

// huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/config.json: hidden_size 2048, intermediate_size 11008,
// 36 layers, 16 heads, 2 KV heads, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen2_5_3B {
    static constexpr std::string_view name = zoo_name<W>("Qwen2.5-3B-Q8_0", "Qwen2.5-3B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 151936, .hidden = 2048, .ffn = 11008, .layers = 36,
                                      .heads = 16, .kv_heads = 2, .head_dim = 128, .max_context = 32768,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .qkv_bias = true, .tied_embeddings = true};
};
static_assert(ModelTraits<Qwen2_5_3B<DType::Q8_0>> && ModelTraits<Qwen2_5_3B<DType::Q4_0>>);
static_assert(Qwen2_5_3B<DType::Q8_0>::shape.weight_bytes() == 3279519744u);
static_assert(Qwen2_5_3B<DType::Q4_0>::shape.weight_bytes() == 1736671232u);
static_assert(Qwen2_5_3B<DType::Q8_0>::shape.kv_cache_bytes(Qwen2_5_3B<DType::Q8_0>::shape.max_context) == 1207959552u);
static_assert(Qwen2_5_3B<DType::Q8_0>::shape.head_dim == 128);

// huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json: hidden_size 3584, intermediate_size 18944,
// 28 layers, 28 heads, 4 KV heads, vocab 152064, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings false.
template <DType W>
    requires ZooWeights<W>
struct Qwen2_5_7B {
    static constexpr std::string_view name = zoo_name<W>("Qwen2.5-7B-Q8_0", "Qwen2.5-7B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen2, .vocab = 152064, .hidden = 3584, .ffn = 18944, .layers = 28,
                                      .heads = 28, .kv_heads = 4, .head_dim = 128, .max_context = 32768,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .qkv_bias = true, .tied_embeddings = false};
};
static_assert(ModelTraits<Qwen2_5_7B<DType::Q8_0>> && ModelTraits<Qwen2_5_7B<DType::Q4_0>>);
static_assert(Qwen2_5_7B<DType::Q8_0>::shape.weight_bytes() == 8092571648u);
static_assert(Qwen2_5_7B<DType::Q4_0>::shape.weight_bytes() == 4284930048u);
static_assert(Qwen2_5_7B<DType::Q8_0>::shape.kv_cache_bytes(Qwen2_5_7B<DType::Q8_0>::shape.max_context) == 1879048192u);
static_assert(Qwen2_5_7B<DType::Q8_0>::shape.head_dim == 128);

}  // namespace forge::models
