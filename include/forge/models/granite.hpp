#pragma once
// Granite 3.3 (IBM), granite architecture: a Llama layer with multipliers on the embeddings, each block's
// output, the attention scores (in place of 1/sqrt(head_dim)) and the logits (divided). Shape from the
// model's config.json on the Hugging Face hub; GGUF context_length is max_position_embeddings.
#include "forge/models/zoo_common.hpp"

namespace forge::models {

// huggingface.co/ibm-granite/granite-3.3-2b-instruct/blob/main/config.json: hidden_size 2048,
// intermediate_size 8192, 40 layers, 32 heads, 8 KV heads, vocab 49159, max_position_embeddings 131072,
// rope_theta 10000000, rms_norm_eps 1e-5, embedding_multiplier 12, residual_multiplier 0.22,
// attention_multiplier 0.015625, logits_scaling 8, tie_word_embeddings true.
template <DType W>
    requires ZooWeights<W>
struct Granite3_3_2B {
    static constexpr std::string_view name = zoo_name<W>("Granite-3.3-2B-Q8_0", "Granite-3.3-2B-Q4_0");
    static constexpr ModelShape shape{.arch = Arch::granite, .vocab = 49159, .hidden = 2048, .ffn = 8192, .layers = 40,
                                      .heads = 32, .kv_heads = 8, .head_dim = 64, .max_context = 131072,
                                      .rope_base = 10000000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = W, .tied_embeddings = true, .embedding_scale = 12.0f,
                                      .residual_scale = 0.22f, .attention_scale = 0.015625f, .logit_scale = 8.0f};
};

static_assert(ModelTraits<Granite3_3_2B<DType::Q8_0>> && ModelTraits<Granite3_3_2B<DType::Q4_0>>);
static_assert(Granite3_3_2B<DType::Q8_0>::shape.weight_bytes() == 2692373376u);
static_assert(Granite3_3_2B<DType::Q4_0>::shape.weight_bytes() == 1425686400u);
static_assert(Granite3_3_2B<DType::Q8_0>::shape.kv_cache_bytes(Granite3_3_2B<DType::Q8_0>::shape.max_context) == 10737418240u);
static_assert(Granite3_3_2B<DType::Q8_0>::shape.head_dim == 64);

}  // namespace forge::models
