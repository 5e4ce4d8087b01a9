#pragma once
// The rules a model shape must obey for forge's kernels, written once. Compiled traits check them with
// static_assert (traits/model_traits.hpp); a shape read from a file checks them at run time (below).
#include <cstdint>
#include <string>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

// Largest head_dim the attention kernels keep in registers / threadgroup memory.
inline constexpr int kMaxHeadDim = 256;
// Largest heads * head_dim: far beyond any model, and small enough that q_dim() and kv_dim() fit an int.
inline constexpr std::int64_t kMaxHeadValues = std::int64_t(1) << 24;
inline constexpr float kMaxFloat = 3.40282347e+38f;  // std::isfinite is not constexpr before C++23

// X(condition on `s`, message). Each condition guards its own divisions so it is safe on any input.
#define FORGE_SHAPE_RULES(X)                                                                                     \
    X(s.vocab > 0 && s.hidden > 0 && s.ffn > 0 && s.layers > 0 && s.heads > 0 && s.kv_heads > 0 &&              \
          s.head_dim > 0 && s.max_context > 0,                                                                   \
      "every size (vocab, hidden, ffn, layers, heads, kv_heads, head_dim, max_context) must be positive")        \
    X(s.kv_heads > 0 && s.heads % s.kv_heads == 0,                                                               \
      "heads must be a multiple of kv_heads (grouped-query attention shares each KV head among heads/kv_heads)")  \
    X(s.head_dim % 4 == 0 && s.head_dim <= kMaxHeadDim,                                                          \
      "head_dim must be a multiple of 4 and at most 256 (the attention and RoPE kernels work on float4 lanes)")   \
    X(dtype_info(s.weights).computable,                                                                          \
      "weights must be one of " FORGE_COMPUTABLE_TYPES " (convert other types with `forge quantize`)")           \
    X(std::int64_t(s.heads) * s.head_dim <= kMaxHeadValues,                                                      \
      "heads * head_dim must be at most 2^24 (the widest attention row forge allocates)")                       \
    X(!is_quantized(s.weights) || (s.hidden % 32 == 0 && s.ffn % 32 == 0 && std::int64_t(s.heads) * s.head_dim % 32 == 0), \
      "quantized weights need hidden, ffn and heads*head_dim to be multiples of 32 (Q8_0/Q4_0 blocks hold 32 "   \
      "values along each row)")                                                                                  \
    X(s.sliding_window >= 0 && s.sliding_window <= s.max_context,                                                \
      "sliding_window must be between 0 (full attention) and max_context")                                       \
    X(s.rms_eps > 0.0f && s.rms_eps <= kMaxFloat, "rms_eps must be positive and finite")                         \
    X(s.rope_base >= 1.0f && s.rope_base <= kMaxFloat,                                                           \
      "rope_base must be finite and at least 1 (RoPE turns position p by p / rope_base^(2i/head_dim): a base "  \
      "below 1 makes those angles overflow to infinity)")                                                        \
    X(s.rope_style == rope_style_of(s.arch),                                                                     \
      "the architecture fixes how RoPE pairs a head's dimensions: qwen2, qwen3 and phi3 models rotate NeoX "     \
      "halves (rope_style = RopeStyle::neox), llama, mistral, granite and smollm3 models adjacent pairs "         \
      "(RopeStyle::adjacent)")                                                                                   \
    X(s.no_rope_every >= 0, "no_rope_every must be 0 (RoPE in every layer) or N > 0 (none in layers N-1, 2N-1, ...)") \
    X(s.embedding_scale > 0.0f && s.embedding_scale <= kMaxFloat && s.residual_scale > 0.0f &&                  \
          s.residual_scale <= kMaxFloat && s.logit_scale > 0.0f && s.logit_scale <= kMaxFloat &&                 \
          s.attention_scale >= 0.0f && s.attention_scale <= kMaxFloat,                                           \
      "embedding_scale, residual_scale and logit_scale must be positive and finite, attention_scale finite and " \
      "0 (meaning 1/sqrt(head_dim)) or positive")

// Every rule `s` breaks, by its message (empty when the shape is usable).
inline std::vector<std::string> shape_problems(const ModelShape& s) {
    std::vector<std::string> out;
#define FORGE_SHAPE_RULE_RUNTIME(cond, msg) \
    if (!(cond)) out.emplace_back(msg);
    FORGE_SHAPE_RULES(FORGE_SHAPE_RULE_RUNTIME)
#undef FORGE_SHAPE_RULE_RUNTIME
    return out;
}

// Throws forge::Error naming the first rule `s` breaks.
inline void require_supported_shape(const ModelShape& s) {
    if (const auto problems = shape_problems(s); !problems.empty()) throw Error("unsupported model shape: " + problems.front());
}

}  // namespace forge
