#pragma once
// SmolLM3 (HuggingFaceTB), smollm3 architecture: a Llama layer whose every fourth layer has no RoPE
// (config no_rope_layer_interval 4; llama.cpp fixes it at 4 for the architecture). Shape from the
// model's config.json on the Hugging Face hub; GGUF context_length is max_position_embeddings.
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// huggingface.co/HuggingFaceTB/SmolLM3-3B/blob/main/config.json: hidden_size 2048, intermediate_size 11008,
// 36 layers, 16 heads, 4 KV heads, vocab 128256, max_position_embeddings 65536, rope_theta 5000000,
// rms_norm_eps 1e-6, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct SmolLM3_3B {
    static constexpr std::string_view name = zoo_name<W>("SmolLM3-3B-Q8_0", "SmolLM3-3B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::smollm3, .vocab = 128256, .hidden = 2048, .ffn = 11008, .layers = 36,
                                      .heads = 16, .kv_heads = 4, .head_dim = 128, .max_context = 65536,
                                      .rope_base = 5000000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-6f,
                                      .weights = W, .tied_embeddings = true, .no_rope_every = 4};
};

static_assert(ModelTraits<SmolLM3_3B<DType::Q8_0>> && ModelTraits<SmolLM3_3B<DType::Q4_0>>);
static_assert(SmolLM3_3B<DType::Q8_0>::shape.weight_bytes() == 3267731456u);
static_assert(SmolLM3_3B<DType::Q4_0>::shape.weight_bytes() == 1730256896u);
static_assert(SmolLM3_3B<DType::Q8_0>::shape.kv_cache_bytes(SmolLM3_3B<DType::Q8_0>::shape.max_context) == 4831838208u);
static_assert(SmolLM3_3B<DType::Q8_0>::shape.head_dim == 128);

}  // namespace forge::models
