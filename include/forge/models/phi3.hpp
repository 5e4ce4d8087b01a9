#pragma once
// Phi-3.5 (Microsoft), phi3 architecture: Q/K/V and gate/up stored fused (a layout the loader splits, not
// a shape), NeoX RoPE, and LongRoPE for its 128k context (frequency factors in the file: short ones within
// the trained 4096 positions, long ones beyond). Shape from the model's config.json on the Hugging Face
// hub; GGUF context_length is max_position_embeddings.
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// huggingface.co/microsoft/Phi-3.5-mini-instruct/blob/main/config.json: hidden_size 3072, intermediate_size
// 8192, 32 layers, 32 heads, 32 KV heads (head_dim 96), vocab 32064, max_position_embeddings 131072,
// original_max_position_embeddings 4096, rope_theta 10000, rms_norm_eps 1e-5, tie_word_embeddings false.
template <DType W>
    requires ZooWeights<W>
struct Phi3_5_Mini {
    static constexpr std::string_view name = zoo_name<W>("Phi-3.5-mini-Q8_0", "Phi-3.5-mini-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::phi3, .vocab = 32064, .hidden = 3072, .ffn = 8192, .layers = 32,
                                      .heads = 32, .kv_heads = 32, .head_dim = 96, .max_context = 131072,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::neox, .rms_eps = 1e-5f,
                                      .weights = W, .tied_embeddings = false};
};

static_assert(ModelTraits<Phi3_5_Mini<DType::Q8_0>> && ModelTraits<Phi3_5_Mini<DType::Q4_0>>);
static_assert(Phi3_5_Mini<DType::Q8_0>::shape.weight_bytes() == 4060483584u);
static_assert(Phi3_5_Mini<DType::Q4_0>::shape.weight_bytes() == 2150043648u);
static_assert(Phi3_5_Mini<DType::Q8_0>::shape.kv_cache_bytes(Phi3_5_Mini<DType::Q8_0>::shape.max_context) == 51539607552u);
static_assert(Phi3_5_Mini<DType::Q8_0>::shape.head_dim == 96);

}  // namespace forge::models
