#pragma once
// Reads a ModelShape from a GGUF file's metadata and tensor table: the run-time twin of compiled traits.
#include <string>

#include "forge/gguf/reader.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge::gguf {

inline Arch arch_from_name(const std::string& name) {
    if (name == "llama") return Arch::llama;
    if (name == "mistral") return Arch::mistral;
    if (name == "qwen2") return Arch::qwen2;
    throw Error("unknown architecture " + quoted_text(name) + " (forge runs llama, mistral and qwen2 models)");
}

inline ModelShape model_shape(const File& f) {
    const auto arch_name_str = f.get_string("general.architecture");
    if (!arch_name_str) throw Error("metadata key 'general.architecture' is missing: not a model file");
    ModelShape s;
    s.arch = arch_from_name(*arch_name_str);
    const std::string p = *arch_name_str + ".";
    auto dim = [&](const std::string& key) -> int {
        const auto v = f.require_uint(p + key);
        if (v == 0 || v > (1u << 30)) throw Error("metadata key '" + p + key + "' = " + std::to_string(v) + " is out of range");
        return static_cast<int>(v);
    };
    s.hidden = dim("embedding_length");
    s.ffn = dim("feed_forward_length");
    s.layers = dim("block_count");
    s.heads = dim("attention.head_count");
    s.kv_heads = f.find(p + "attention.head_count_kv") ? dim("attention.head_count_kv") : s.heads;
    s.head_dim = f.find(p + "attention.key_length") ? dim("attention.key_length") : s.hidden / s.heads;
    s.max_context = dim("context_length");
    s.rope_base = static_cast<float>(f.get_float(p + "rope.freq_base").value_or(10000.0));
    s.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
    s.rope_style = s.arch == Arch::qwen2 ? RopeStyle::neox : RopeStyle::adjacent;
    s.sliding_window = f.find(p + "attention.sliding_window") ? dim("attention.sliding_window") : 0;

    const TensorInfo& embd = f.tensor("token_embd.weight");
    if (embd.dims.size() != 2 || embd.dims[0] != std::uint64_t(s.hidden))
        throw Error("tensor 'token_embd.weight' must be [" + std::to_string(s.hidden) + ", vocab]");
    if (embd.dims[1] > (1u << 30)) throw Error("tensor 'token_embd.weight': vocab out of range");
    s.vocab = static_cast<int>(embd.dims[1]);
    s.weights = f.tensor("blk.0.attn_q.weight").dtype();
    s.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
    s.tied_embeddings = f.find_tensor("output.weight") == nullptr;
    return s;
}

}  // namespace forge::gguf
