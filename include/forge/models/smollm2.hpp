#pragma once
// SmolLM2 (HuggingFaceTB), llama architecture with tied embeddings. Shapes from each model's config.json on
// the Hugging Face hub; GGUF context_length is max_position_embeddings, as llama.cpp's converter writes it.
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// After each model, the facts users plan memory with, checked at compile time: weight bytes with every
// matrix in the one type (as forge quantize writes them), the f16 KV cache at the full context, head_dim.

// huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/blob/main/config.json: hidden_size 576,
// intermediate_size 1536, 30 layers, 9 heads, 3 KV heads, vocab 49152, max_position_embeddings 8192,
// rope_theta 100000, rms_norm_eps 1e-5, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct SmolLM2_135M {
    static constexpr std::string_view name = zoo_name<W>("SmolLM2-135M-Q8_0", "SmolLM2-135M-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 49152, .hidden = 576, .ffn = 1536, .layers = 30,
                                      .heads = 9, .kv_heads = 3, .head_dim = 64, .max_context = 8192,
                                      .rope_base = 100000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = true};
};
static_assert(ModelTraits<SmolLM2_135M<DType::Q8_0>> && ModelTraits<SmolLM2_135M<DType::Q4_0>>);
static_assert(SmolLM2_135M<DType::Q8_0>::shape.weight_bytes() == 143025408u);
static_assert(SmolLM2_135M<DType::Q4_0>::shape.weight_bytes() == 75785472u);
static_assert(SmolLM2_135M<DType::Q8_0>::shape.kv_cache_bytes(SmolLM2_135M<DType::Q8_0>::shape.max_context) == 188743680u);
static_assert(SmolLM2_135M<DType::Q8_0>::shape.head_dim == 64);

// huggingface.co/HuggingFaceTB/SmolLM2-360M-Instruct/blob/main/config.json: hidden_size 960,
// intermediate_size 2560, 32 layers, 15 heads, 5 KV heads, vocab 49152, max_position_embeddings 8192,
// rope_theta 100000, rms_norm_eps 1e-5, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct SmolLM2_360M {
    static constexpr std::string_view name = zoo_name<W>("SmolLM2-360M-Q8_0", "SmolLM2-360M-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 49152, .hidden = 960, .ffn = 2560, .layers = 32,
                                      .heads = 15, .kv_heads = 5, .head_dim = 64, .max_context = 8192,
                                      .rope_base = 100000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = true};
};
static_assert(ModelTraits<SmolLM2_360M<DType::Q8_0>> && ModelTraits<SmolLM2_360M<DType::Q4_0>>);
static_assert(SmolLM2_360M<DType::Q8_0>::shape.weight_bytes() == 384618240u);
static_assert(SmolLM2_360M<DType::Q4_0>::shape.weight_bytes() == 203738880u);
static_assert(SmolLM2_360M<DType::Q8_0>::shape.kv_cache_bytes(SmolLM2_360M<DType::Q8_0>::shape.max_context) == 335544320u);
static_assert(SmolLM2_360M<DType::Q8_0>::shape.head_dim == 64);

// huggingface.co/HuggingFaceTB/SmolLM2-1.7B-Instruct/blob/main/config.json: hidden_size 2048,
// intermediate_size 8192, 24 layers, 32 heads, 32 KV heads, vocab 49152, max_position_embeddings 8192,
// rope_theta 130000, rms_norm_eps 1e-5, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct SmolLM2_1_7B {
    static constexpr std::string_view name = zoo_name<W>("SmolLM2-1.7B-Q8_0", "SmolLM2-1.7B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 49152, .hidden = 2048, .ffn = 8192, .layers = 24,
                                      .heads = 32, .kv_heads = 32, .head_dim = 64, .max_context = 8192,
                                      .rope_base = 130000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = true};
};
static_assert(ModelTraits<SmolLM2_1_7B<DType::Q8_0>> && ModelTraits<SmolLM2_1_7B<DType::Q4_0>>);
static_assert(SmolLM2_1_7B<DType::Q8_0>::shape.weight_bytes() == 1818632192u);
static_assert(SmolLM2_1_7B<DType::Q4_0>::shape.weight_bytes() == 962994176u);
static_assert(SmolLM2_1_7B<DType::Q8_0>::shape.kv_cache_bytes(SmolLM2_1_7B<DType::Q8_0>::shape.max_context) == 1610612736u);
static_assert(SmolLM2_1_7B<DType::Q8_0>::shape.head_dim == 64);

}  // namespace forge::models
