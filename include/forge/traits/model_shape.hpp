#pragma once
// ModelShape: everything forge needs to know about a Llama-family model's shape. Compiled traits hold
// one as a `static constexpr` member; a GGUF file yields one at run time. One struct serves both, so
// the compile-time and run-time paths cannot disagree on what a field means.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/dtype.hpp"
#include "forge/core/error.hpp"

namespace forge {

// The GGUF architectures forge runs. Beyond the Llama layer, each adds one thing (the fields below):
// qwen3 normalises every head of q and k; phi3 stores Q/K/V and gate/up fused (a layout, not a shape);
// granite scales the embeddings, residual branches, attention and logits; smollm3 leaves RoPE out of
// every fourth layer.
enum class Arch : std::uint8_t { llama, mistral, qwen2, qwen3, phi3, granite, smollm3 };
// How RoPE pairs the dimensions of a head: GGUF `llama` rotates adjacent pairs (2i, 2i+1); `qwen2`
// rotates the two halves (i, i + head_dim/2), which ggml calls NeoX.
enum class RopeStyle : std::uint8_t { adjacent, neox };

constexpr std::string_view arch_name(Arch a) {
    switch (a) {
        case Arch::llama: return "llama";
        case Arch::mistral: return "mistral";
        case Arch::qwen2: return "qwen2";
        case Arch::qwen3: return "qwen3";
        case Arch::phi3: return "phi3";
        case Arch::granite: return "granite";
        case Arch::smollm3: return "smollm3";
    }
    return "?";
}
// The pairing each architecture's RoPE uses (llama.cpp's rope type for it).
constexpr RopeStyle rope_style_of(Arch a) {
    return a == Arch::qwen2 || a == Arch::qwen3 || a == Arch::phi3 ? RopeStyle::neox : RopeStyle::adjacent;
}
constexpr std::string_view rope_style_name(RopeStyle r) { return r == RopeStyle::adjacent ? "adjacent" : "neox"; }

struct ModelShape {
    Arch arch = Arch::llama;
    int vocab = 0;
    int hidden = 0;
    int ffn = 0;
    int layers = 0;
    int heads = 0;
    int kv_heads = 0;
    int head_dim = 0;
    int max_context = 0;
    float rope_base = 10000.0f;
    RopeStyle rope_style = RopeStyle::adjacent;
    float rms_eps = 1e-5f;
    DType weights = DType::F32;  // type of the per-layer weight matrices
    bool qkv_bias = false;
    bool tied_embeddings = false;
    int sliding_window = 0;  // 0: full attention
    bool qk_norm = false;    // RMSNorm over each head of q and k (weights of head_dim) before RoPE
    int no_rope_every = 0;   // N: layers N-1, 2N-1, ... have no RoPE (1: none has); 0: every layer has it
    // Multipliers (granite's; 1 elsewhere): the embeddings are multiplied by embedding_scale, each
    // block's output by residual_scale before it joins the residual stream, the logits divided by
    // logit_scale. q·k is multiplied by attention_scale, 0 meaning 1/sqrt(head_dim).
    float embedding_scale = 1.0f;
    float residual_scale = 1.0f;
    float attention_scale = 0.0f;
    float logit_scale = 1.0f;

    // Derived sizes: constexpr so users can static_assert on them.
    constexpr int q_dim() const { return heads * head_dim; }
    constexpr int kv_dim() const { return kv_heads * head_dim; }
    constexpr int group_size() const { return heads / kv_heads; }
    // The factor q·k is multiplied by (not constexpr: std::sqrt is not, before C++26).
    float kq_scale() const { return attention_scale != 0.0f ? attention_scale : 1.0f / std::sqrt(float(head_dim)); }
    constexpr bool has_rope(int layer) const { return no_rope_every == 0 || (layer + 1) % no_rope_every != 0; }
    constexpr std::size_t matrix_bytes(int rows, int cols) const {
        return std::size_t(rows) * row_bytes(weights, std::size_t(cols));
    }
    // f16 K and V for every layer.
    constexpr std::size_t kv_cache_bytes_per_token() const { return 2u * 2u * std::size_t(layers) * kv_dim(); }
    constexpr std::size_t kv_cache_bytes(int tokens) const { return kv_cache_bytes_per_token() * std::size_t(tokens); }
    constexpr std::size_t layer_weight_bytes() const {
        std::size_t b = matrix_bytes(q_dim(), hidden) + 2 * matrix_bytes(kv_dim(), hidden) +
                        matrix_bytes(hidden, q_dim()) + 2 * matrix_bytes(ffn, hidden) + matrix_bytes(hidden, ffn);
        b += 2 * 4 * std::size_t(hidden);  // attention and FFN norms stay F32
        if (qk_norm) b += 2 * 4 * std::size_t(head_dim);
        if (qkv_bias) b += 4 * std::size_t(q_dim() + 2 * kv_dim());
        return b;
    }
    // Weight bytes with every matrix (embeddings and LM head included) in `weights`.
    constexpr std::size_t weight_bytes() const {
        std::size_t b = std::size_t(layers) * layer_weight_bytes() + matrix_bytes(vocab, hidden) + 4 * std::size_t(hidden);
        if (!tied_embeddings) b += matrix_bytes(vocab, hidden);
        return b;
    }

    friend constexpr bool operator==(const ModelShape&, const ModelShape&) = default;
};

// Calls f(name, s.field...) for every field in declaration order, across one or more shapes, so code
// that lists, prints or compares fields never writes the field list again.
template <class F, class... S>
constexpr void for_each_field(F&& f, const S&... s) {
    f("arch", s.arch...);
    f("vocab", s.vocab...);
    f("hidden", s.hidden...);
    f("ffn", s.ffn...);
    f("layers", s.layers...);
    f("heads", s.heads...);
    f("kv_heads", s.kv_heads...);
    f("head_dim", s.head_dim...);
    f("max_context", s.max_context...);
    f("rope_base", s.rope_base...);
    f("rope_style", s.rope_style...);
    f("rms_eps", s.rms_eps...);
    f("weights", s.weights...);
    f("qkv_bias", s.qkv_bias...);
    f("tied_embeddings", s.tied_embeddings...);
    f("sliding_window", s.sliding_window...);
    f("qk_norm", s.qk_norm...);
    f("no_rope_every", s.no_rope_every...);
    f("embedding_scale", s.embedding_scale...);
    f("residual_scale", s.residual_scale...);
    f("attention_scale", s.attention_scale...);
    f("logit_scale", s.logit_scale...);
}

// A field's value as people write it.
inline std::string shape_field_text(Arch a) { return std::string(arch_name(a)); }
inline std::string shape_field_text(RopeStyle r) { return std::string(rope_style_name(r)); }
inline std::string shape_field_text(DType t) { return std::string(dtype_name(t)); }
inline std::string shape_field_text(bool b) { return b ? "true" : "false"; }
inline std::string shape_field_text(int v) { return std::to_string(v); }
inline std::string shape_field_text(float v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", double(v));
    return buf;
}

// Every field in which `found` differs from `expected`, as "field: expected X, found Y".
inline std::vector<std::string> shape_mismatches(const ModelShape& expected, const ModelShape& found) {
    std::vector<std::string> out;
    for_each_field(
        [&](std::string_view field, const auto& e, const auto& f) {
            if (!(e == f))
                out.push_back(std::string(field) + ": expected " + shape_field_text(e) + ", found " + shape_field_text(f));
        },
        expected, found);
    return out;
}

// Throws forge::Error naming every field in which a file's shape `found` differs from compiled traits
// `name`'s shape.
inline void require_shape_matches(std::string_view name, const ModelShape& expected, const ModelShape& found) {
    const auto diff = shape_mismatches(expected, found);
    if (diff.empty()) return;
    std::string msg = "the file does not match compiled traits " + std::string(name) + ":";
    for (const auto& d : diff) msg += " " + d + ";";
    msg.pop_back();
    throw Error(msg);
}

}  // namespace forge
