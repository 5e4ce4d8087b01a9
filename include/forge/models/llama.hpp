#pragma once
// Llama-architecture models from Meta, TinyLlama and Mistral AI. Shapes from each model's config.json on the
// Hugging Face hub; GGUF context_length is max_position_embeddings, as llama.cpp's converter writes it.
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// After each model, the facts users plan memory with, checked at compile time: weight bytes with every
// matrix in the one type (as forge quantize writes them), the f16 KV cache at the full context, head_dim.

// huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0/blob/main/config.json: hidden_size 2048,
// intermediate_size 5632, 22 layers, 32 heads, 4 KV heads, vocab 32000, max_position_embeddings 2048,
// rope_theta 10000, rms_norm_eps 1e-5, tie_word_embeddings false.
template <DType W>
    requires ZooWeights<W>
struct TinyLlama_1_1B {
    static constexpr std::string_view name = zoo_name<W>("TinyLlama-1.1B-Chat-Q8_0", "TinyLlama-1.1B-Chat-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 32000, .hidden = 2048, .ffn = 5632, .layers = 22,
                                      .heads = 32, .kv_heads = 4, .head_dim = 64, .max_context = 2048,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = false};
};
static_assert(ModelTraits<TinyLlama_1_1B<DType::Q8_0>> && ModelTraits<TinyLlama_1_1B<DType::Q4_0>>);
static_assert(TinyLlama_1_1B<DType::Q8_0>::shape.weight_bytes() == 1169072128u);
static_assert(TinyLlama_1_1B<DType::Q4_0>::shape.weight_bytes() == 619094016u);
static_assert(TinyLlama_1_1B<DType::Q8_0>::shape.kv_cache_bytes(TinyLlama_1_1B<DType::Q8_0>::shape.max_context) == 46137344u);
static_assert(TinyLlama_1_1B<DType::Q8_0>::shape.head_dim == 64);

// Llama 3.1 and 3.2 are trained with "llama3" RoPE scaling (factor 8 / 32, rope_scaling in config.json), which
// llama.cpp's converter writes into the GGUF as the tensor rope_freqs.weight: head_dim/2 factors dividing the
// angles of a head's pairs. forge loads it with the other weights (ModelWeights::rope_freqs) and applies it as
// llama.cpp does, on the CPU and Metal paths. The traits describe the shape; the factors come from the file.

// huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/config.json: hidden_size 2048,
// intermediate_size 8192, 16 layers, 32 heads, 8 KV heads, vocab 128256, max_position_embeddings 131072,
// rope_theta 500000, rms_norm_eps 1e-5, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Llama3_2_1B {
    static constexpr std::string_view name = zoo_name<W>("Llama-3.2-1B-Q8_0", "Llama-3.2-1B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 128256, .hidden = 2048, .ffn = 8192, .layers = 16,
                                      .heads = 32, .kv_heads = 8, .head_dim = 64, .max_context = 131072,
                                      .rope_base = 500000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = true};
};
static_assert(ModelTraits<Llama3_2_1B<DType::Q8_0>> && ModelTraits<Llama3_2_1B<DType::Q4_0>>);
static_assert(Llama3_2_1B<DType::Q8_0>::shape.weight_bytes() == 1313251328u);
static_assert(Llama3_2_1B<DType::Q4_0>::shape.weight_bytes() == 695377920u);
static_assert(Llama3_2_1B<DType::Q8_0>::shape.kv_cache_bytes(Llama3_2_1B<DType::Q8_0>::shape.max_context) == 4294967296u);
static_assert(Llama3_2_1B<DType::Q8_0>::shape.head_dim == 64);

// huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/config.json: hidden_size 3072,
// intermediate_size 8192, 28 layers, 24 heads, 8 KV heads, vocab 128256, max_position_embeddings 131072,
// rope_theta 500000, rms_norm_eps 1e-5, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Llama3_2_3B {
    static constexpr std::string_view name = zoo_name<W>("Llama-3.2-3B-Q8_0", "Llama-3.2-3B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 128256, .hidden = 3072, .ffn = 8192, .layers = 28,
                                      .heads = 24, .kv_heads = 8, .head_dim = 128, .max_context = 131072,
                                      .rope_base = 500000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = true};
};
static_assert(ModelTraits<Llama3_2_3B<DType::Q8_0>> && ModelTraits<Llama3_2_3B<DType::Q4_0>>);
static_assert(Llama3_2_3B<DType::Q8_0>::shape.weight_bytes() == 3414061056u);
static_assert(Llama3_2_3B<DType::Q4_0>::shape.weight_bytes() == 1807773696u);
static_assert(Llama3_2_3B<DType::Q8_0>::shape.kv_cache_bytes(Llama3_2_3B<DType::Q8_0>::shape.max_context) == 15032385536u);
static_assert(Llama3_2_3B<DType::Q8_0>::shape.head_dim == 128);

// huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json: hidden_size 4096,
// intermediate_size 14336, 32 layers, 32 heads, 8 KV heads, vocab 128256, max_position_embeddings 131072,
// rope_theta 500000, rms_norm_eps 1e-5, tie_word_embeddings false.
template <DType W>
    requires ZooWeights<W>
struct Llama3_1_8B {
    static constexpr std::string_view name = zoo_name<W>("Llama-3.1-8B-Q8_0", "Llama-3.1-8B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 128256, .hidden = 4096, .ffn = 14336, .layers = 32,
                                      .heads = 32, .kv_heads = 8, .head_dim = 128, .max_context = 131072,
                                      .rope_base = 500000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = false};
};
static_assert(ModelTraits<Llama3_1_8B<DType::Q8_0>> && ModelTraits<Llama3_1_8B<DType::Q4_0>>);
static_assert(Llama3_1_8B<DType::Q8_0>::shape.weight_bytes() == 8532934656u);
static_assert(Llama3_1_8B<DType::Q4_0>::shape.weight_bytes() == 4517937152u);
static_assert(Llama3_1_8B<DType::Q8_0>::shape.kv_cache_bytes(Llama3_1_8B<DType::Q8_0>::shape.max_context) == 17179869184u);
static_assert(Llama3_1_8B<DType::Q8_0>::shape.head_dim == 128);

// huggingface.co/mistralai/Mistral-7B-Instruct-v0.3/blob/main/config.json: hidden_size 4096,
// intermediate_size 14336, 32 layers, 32 heads, 8 KV heads, vocab 32768, max_position_embeddings 32768,
// rope_theta 1000000, rms_norm_eps 1e-5, sliding_window null, tie_word_embeddings false. llama.cpp converts
// MistralForCausalLM to the llama architecture.
template <DType W>
    requires ZooWeights<W>
struct Mistral_7B_v0_3 {
    static constexpr std::string_view name = zoo_name<W>("Mistral-7B-v0.3-Q8_0", "Mistral-7B-v0.3-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 32768, .hidden = 4096, .ffn = 14336, .layers = 32,
                                      .heads = 32, .kv_heads = 8, .head_dim = 128, .max_context = 32768,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .qkv_bias = false, .tied_embeddings = false};
};
static_assert(ModelTraits<Mistral_7B_v0_3<DType::Q8_0>> && ModelTraits<Mistral_7B_v0_3<DType::Q4_0>>);
static_assert(Mistral_7B_v0_3<DType::Q8_0>::shape.weight_bytes() == 7701807104u);
static_assert(Mistral_7B_v0_3<DType::Q4_0>::shape.weight_bytes() == 4077928448u);
static_assert(Mistral_7B_v0_3<DType::Q8_0>::shape.kv_cache_bytes(Mistral_7B_v0_3<DType::Q8_0>::shape.max_context) == 4294967296u);
static_assert(Mistral_7B_v0_3<DType::Q8_0>::shape.head_dim == 128);

}  // namespace forge::models
