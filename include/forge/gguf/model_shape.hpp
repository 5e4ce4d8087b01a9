#pragma once
// Reads a ModelShape from a GGUF file's metadata and tensor table: the run-time twin of compiled traits.
#include <cmath>
#include <string>

#include "forge/gguf/reader.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge::gguf {

inline Arch arch_from_name(const std::string& name) {
    for (const Arch a : {Arch::llama, Arch::mistral, Arch::qwen2, Arch::qwen3, Arch::phi3, Arch::granite, Arch::smollm3})
        if (name == arch_name(a)) return a;
    throw Error("unknown architecture " + quoted_text(name) +
                " (forge runs llama, mistral, qwen2, qwen3, phi3, granite and smollm3 models)");
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
    if (f.find(p + "attention.key_length")) {
        s.head_dim = dim("attention.key_length");
        if (f.find(p + "attention.value_length") && dim("attention.value_length") != s.head_dim)
            throw Error("metadata keys '" + p + "attention.key_length' and 'value_length' differ: forge needs K and V heads of one size");
    } else {
        if (s.hidden % s.heads != 0)
            throw Error("metadata key '" + p + "attention.key_length' is missing and embedding_length " + std::to_string(s.hidden) +
                        " is not a multiple of head_count " + std::to_string(s.heads) + ": the head size is unknown");
        s.head_dim = s.hidden / s.heads;
    }
    s.max_context = dim("context_length");
    s.rope_base = static_cast<float>(f.get_float(p + "rope.freq_base").value_or(10000.0));
    s.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
    s.rope_style = rope_style_of(s.arch);
    // llama.cpp ignores phi3's window (its converter writes one the models were not trained with).
    s.sliding_window = f.find(p + "attention.sliding_window") && s.arch != Arch::phi3 ? dim("attention.sliding_window") : 0;
    s.qk_norm = s.arch == Arch::qwen3;
    if (s.arch == Arch::smollm3) s.no_rope_every = 4;
    if (s.arch == Arch::granite) {
        // A multiplier of 0 (or none) is no multiplier, as llama.cpp reads them.
        const auto multiplier = [&](const std::string& key, float none) {
            const auto v = f.get_float(p + key);
            if (!v || *v == 0.0) return none;
            if (!std::isfinite(*v) || *v < 0.0 || *v > 3.4e38)
                throw Error("metadata key '" + p + key + "' = " + std::to_string(*v) + " is not a usable multiplier");
            return float(*v);
        };
        if (!f.find(p + "logit_scale")) throw Error("metadata key '" + p + "logit_scale' is missing: granite models divide their logits by it");
        s.logit_scale = multiplier("logit_scale", 1.0f);
        s.residual_scale = multiplier("residual_scale", 1.0f);
        s.embedding_scale = multiplier("embedding_scale", 1.0f);
        s.attention_scale = multiplier("attention.scale", 0.0f);
        if (f.get_bool(p + "rope.scaling.finetuned") == false) s.no_rope_every = 1;  // granite's switch for "no RoPE"
    }

    const TensorInfo& embd = f.tensor("token_embd.weight");
    if (embd.dims.size() != 2 || embd.dims[0] != std::uint64_t(s.hidden))
        throw Error("tensor 'token_embd.weight' must be [" + std::to_string(s.hidden) + ", vocab]");
    if (embd.dims[1] > (1u << 30)) throw Error("tensor 'token_embd.weight': vocab out of range");
    s.vocab = static_cast<int>(embd.dims[1]);
    s.weights = f.tensor(f.find_tensor("blk.0.attn_qkv.weight") ? "blk.0.attn_qkv.weight" : "blk.0.attn_q.weight").dtype();
    s.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
    s.tied_embeddings = f.find_tensor("output.weight") == nullptr;
    return s;
}

}  // namespace forge::gguf
