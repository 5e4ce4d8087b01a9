#pragma once
// Karpathy's llama2.c stories260K (tinystories), converted to GGUF: the model bundled with forge.
// Shape from its llama2.c config: dim 64, 5 layers, 8 heads, 4 KV heads, hidden_dim 172, vocab 512, seq_len 512.
#include "forge/traits/model_traits.hpp"

namespace forge::models {

struct Stories260K {
    static constexpr std::string_view name = "stories260K";
    static constexpr ModelShape shape{.arch = Arch::llama, .vocab = 512, .hidden = 64, .ffn = 172, .layers = 5,
                                      .heads = 8, .kv_heads = 4, .head_dim = 8, .max_context = 512,
                                      .rope_base = 10000.0f, .rope_style = RopeStyle::adjacent, .rms_eps = 1e-5f,
                                      .weights = DType::F32, .qkv_bias = false, .tied_embeddings = false};
};
static_assert(ModelTraits<Stories260K>);

}  // namespace forge::models
