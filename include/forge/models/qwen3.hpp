#pragma once
// Qwen3 (Qwen), qwen3 architecture: RMSNorm over each head of q and k before RoPE, NeoX RoPE, no q/k/v
// biases, and heads x head_dim (128 each) not tied to hidden. Shapes from each model's config.json on the
// Hugging Face hub; GGUF context_length is max_position_embeddings (40960 for all four).
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// After each model, the facts users plan memory with, checked at compile time: weight bytes with every
// matrix in the one type (as forge quantize writes them), the f16 KV cache at the full context, head_dim.

// huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json: hidden_size 1024, intermediate_size 3072, 28 layers,
// 16 heads, 8 KV heads, head_dim 128, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen3_0_6B {
    static constexpr std::string_view name = zoo_name<W>("Qwen3-0.6B-Q8_0", "Qwen3-0.6B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen3, .vocab = 151936, .hidden = 1024, .ffn = 3072, .layers = 28,
                                      .heads = 16, .kv_heads = 8, .head_dim = 128, .max_context = 40960,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .tied_embeddings = true, .qk_norm = true};
};

// huggingface.co/Qwen/Qwen3-1.7B/blob/main/config.json: hidden_size 2048, intermediate_size 6144, 28 layers,
// 16 heads, 8 KV heads, head_dim 128, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen3_1_7B {
    static constexpr std::string_view name = zoo_name<W>("Qwen3-1.7B-Q8_0", "Qwen3-1.7B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen3, .vocab = 151936, .hidden = 2048, .ffn = 6144, .layers = 28,
                                      .heads = 16, .kv_heads = 8, .head_dim = 128, .max_context = 40960,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .tied_embeddings = true, .qk_norm = true};
};

// huggingface.co/Qwen/Qwen3-4B/blob/main/config.json: hidden_size 2560, intermediate_size 9728, 36 layers,
// 32 heads, 8 KV heads, head_dim 128 (so heads x head_dim = 4096 > hidden), vocab 151936, rope_theta 1000000,
// rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Qwen3_4B {
    static constexpr std::string_view name = zoo_name<W>("Qwen3-4B-Q8_0", "Qwen3-4B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen3, .vocab = 151936, .hidden = 2560, .ffn = 9728, .layers = 36,
                                      .heads = 32, .kv_heads = 8, .head_dim = 128, .max_context = 40960,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .tied_embeddings = true, .qk_norm = true};
};

// huggingface.co/Qwen/Qwen3-8B/blob/main/config.json: hidden_size 4096, intermediate_size 12288, 36 layers,
// 32 heads, 8 KV heads, head_dim 128, vocab 151936, rope_theta 1000000, rms_norm_eps 1e-6, tie_word_embeddings false.
template <DType W>
    requires ZooWeights<W>
struct Qwen3_8B {
    static constexpr std::string_view name = zoo_name<W>("Qwen3-8B-Q8_0", "Qwen3-8B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::qwen3, .vocab = 151936, .hidden = 4096, .ffn = 12288, .layers = 36,
                                      .heads = 32, .kv_heads = 8, .head_dim = 128, .max_context = 40960,
                                      .rope_base = 1000000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-6f,
                                      .weights = W, .tied_embeddings = false, .qk_norm = true};
};

static_assert(ModelTraits<Qwen3_0_6B<DType::Q8_0>> && ModelTraits<Qwen3_0_6B<DType::Q4_0>>);
static_assert(Qwen3_0_6B<DType::Q8_0>::shape.weight_bytes() == 633495552u);
static_assert(Qwen3_0_6B<DType::Q4_0>::shape.weight_bytes() == 335503360u);
static_assert(Qwen3_0_6B<DType::Q8_0>::shape.kv_cache_bytes(Qwen3_0_6B<DType::Q8_0>::shape.max_context) == 4697620480u);
static_assert(Qwen3_0_6B<DType::Q8_0>::shape.head_dim == 128);

static_assert(ModelTraits<Qwen3_1_7B<DType::Q8_0>> && ModelTraits<Qwen3_1_7B<DType::Q4_0>>);
static_assert(Qwen3_1_7B<DType::Q8_0>::shape.weight_bytes() == 1828474880u);
static_assert(Qwen3_1_7B<DType::Q4_0>::shape.weight_bytes() == 968249344u);
static_assert(Qwen3_1_7B<DType::Q8_0>::shape.kv_cache_bytes(Qwen3_1_7B<DType::Q8_0>::shape.max_context) == 4697620480u);
static_assert(Qwen3_1_7B<DType::Q8_0>::shape.head_dim == 128);

static_assert(ModelTraits<Qwen3_4B<DType::Q8_0>> && ModelTraits<Qwen3_4B<DType::Q4_0>>);
static_assert(Qwen3_4B<DType::Q8_0>::shape.weight_bytes() == 4274448384u);
static_assert(Qwen3_4B<DType::Q4_0>::shape.weight_bytes() == 2263312384u);
static_assert(Qwen3_4B<DType::Q8_0>::shape.kv_cache_bytes(Qwen3_4B<DType::Q8_0>::shape.max_context) == 6039797760u);
static_assert(Qwen3_4B<DType::Q8_0>::shape.head_dim == 128);

static_assert(ModelTraits<Qwen3_8B<DType::Q8_0>> && ModelTraits<Qwen3_8B<DType::Q4_0>>);
static_assert(Qwen3_8B<DType::Q8_0>::shape.weight_bytes() == 8703561728u);
static_assert(Qwen3_8B<DType::Q4_0>::shape.weight_bytes() == 4608348160u);
static_assert(Qwen3_8B<DType::Q8_0>::shape.kv_cache_bytes(Qwen3_8B<DType::Q8_0>::shape.max_context) == 6039797760u);
static_assert(Qwen3_8B<DType::Q8_0>::shape.head_dim == 128);

}  // namespace forge::models
