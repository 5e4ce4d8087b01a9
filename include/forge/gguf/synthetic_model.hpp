#pragma once
// Synthetic models: seeded random weights of any model shape (the zoo's traits, a test's own) written
// as GGUF by forge's writer, with a placeholder vocabulary so other engines can load the same file.
// random_matrix() serves kernel benchmarks; synthetic_model() tests and benchmarks of whole models.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "forge/core/half.hpp"
#include "forge/gguf/writer.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge::gguf {

// splitmix64: fast, seeded, and the same everywhere, so a shape's file is the same on every machine.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return float(next() >> 40) * (1.0f / float(1u << 24)) * 2.0f - 1.0f; }  // [-1, 1)

private:
    std::uint64_t s_;
};

// A [rows, cols] matrix of `type`: the codes are random bytes and each block's scale keeps a row's dot
// product with a unit-RMS input near unit size, so activations stay finite through every layer.
inline std::vector<std::byte> random_matrix(DType type, std::uint64_t rows, std::uint64_t cols, Rng& rng) {
    std::vector<std::byte> out(rows * row_bytes(type, cols));
    const float scale = 1.0f / std::sqrt(float(cols));
    if (type == DType::F32 || type == DType::F16) {
        for (std::size_t i = 0; i < rows * cols; ++i) {
            const float v = rng.uniform() * scale * 1.7f;
            if (type == DType::F32) std::memcpy(&out[i * 4], &v, 4);
            else {
                const std::uint16_t h = f32_to_f16(v);
                std::memcpy(&out[i * 2], &h, 2);
            }
        }
        return out;
    }
    const std::size_t block = type == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
    const std::uint16_t d = f32_to_f16(type == DType::Q8_0 ? scale * 1.7f / 127.0f : scale * 1.7f / 8.0f);
    for (std::size_t b = 0; b < out.size(); b += block) {
        std::memcpy(&out[b], &d, 2);
        for (std::size_t i = 2; i < block; i += 8) {
            const std::uint64_t r = rng.next();
            std::memcpy(&out[b + i], &r, std::min<std::size_t>(8, block - i));
        }
        if (type == DType::Q8_0)  // -128 is outside Q8_0's symmetric range
            for (std::size_t i = 2; i < block; ++i)
                if (out[b + i] == std::byte{0x80}) out[b + i] = std::byte{0x81};
    }
    return out;
}

inline std::vector<std::byte> ones_f32(std::uint64_t n) {
    std::vector<std::byte> out(n * 4);
    const float one = 1.0f;
    for (std::uint64_t i = 0; i < n; ++i) std::memcpy(&out[i * 4], &one, 4);
    return out;
}

// A model of shape `s` with random weights (norms of ones); the same seed gives the same bytes.
inline Writer synthetic_model(const ModelShape& s, std::uint64_t seed = 42) {
    Rng rng(seed);
    Writer w;
    const std::string a(arch_name(s.arch));
    w.set("general.architecture", Value::string(a));
    // Not the architecture's name: llama.cpp gives Phi-3's special tokens attributes when the name says phi3.
    w.set("general.name", Value::string("forge synthetic model"));
    w.set(a + ".context_length", Value::u32(std::uint32_t(s.max_context)));
    w.set(a + ".embedding_length", Value::u32(std::uint32_t(s.hidden)));
    w.set(a + ".feed_forward_length", Value::u32(std::uint32_t(s.ffn)));
    w.set(a + ".block_count", Value::u32(std::uint32_t(s.layers)));
    w.set(a + ".attention.head_count", Value::u32(std::uint32_t(s.heads)));
    w.set(a + ".attention.head_count_kv", Value::u32(std::uint32_t(s.kv_heads)));
    w.set(a + ".rope.freq_base", Value::f32(s.rope_base));
    w.set(a + ".attention.layer_norm_rms_epsilon", Value::f32(s.rms_eps));
    if (s.head_dim * s.heads != s.hidden) {
        w.set(a + ".attention.key_length", Value::u32(std::uint32_t(s.head_dim)));
        w.set(a + ".attention.value_length", Value::u32(std::uint32_t(s.head_dim)));
    }
    if (s.arch == Arch::granite) {
        w.set(a + ".logit_scale", Value::f32(s.logit_scale));
        w.set(a + ".residual_scale", Value::f32(s.residual_scale));
        w.set(a + ".embedding_scale", Value::f32(s.embedding_scale));
        w.set(a + ".attention.scale", Value::f32(s.attention_scale));
    }
    // A placeholder SentencePiece vocabulary: other engines refuse a model without one.
    std::vector<Value> tokens, scores, types;
    for (int i = 0; i < s.vocab; ++i) {
        tokens.push_back(Value::string(i < 3 ? (i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>") : "<t" + std::to_string(i) + ">"));
        scores.push_back(Value::f32(0.0f));
        types.push_back(Value::i32(i < 3 ? (i == 0 ? 2 : 3) : 1));
    }
    w.set("tokenizer.ggml.model", Value::string("llama"));
    w.set("tokenizer.ggml.tokens", Value::array(ValueType::string, std::move(tokens)));
    w.set("tokenizer.ggml.scores", Value::array(ValueType::f32, std::move(scores)));
    w.set("tokenizer.ggml.token_type", Value::array(ValueType::i32, std::move(types)));
    w.set("tokenizer.ggml.bos_token_id", Value::u32(1));
    w.set("tokenizer.ggml.eos_token_id", Value::u32(2));

    const auto H = std::uint64_t(s.hidden), F = std::uint64_t(s.ffn), Q = std::uint64_t(s.q_dim()),
               KV = std::uint64_t(s.kv_dim()), V = std::uint64_t(s.vocab);
    auto matrix = [&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
        w.add_tensor(name, {cols, rows}, s.weights, random_matrix(s.weights, rows, cols, rng));
    };
    auto vector = [&](const std::string& name, std::uint64_t n, bool ones) {
        w.add_tensor(name, {n}, DType::F32, ones ? ones_f32(n) : random_matrix(DType::F32, 1, n, rng));
    };
    matrix("token_embd.weight", V, H);
    vector("output_norm.weight", H, true);
    if (!s.tied_embeddings) matrix("output.weight", V, H);
    for (int l = 0; l < s.layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        vector(p + "attn_norm.weight", H, true);
        if (s.arch == Arch::phi3) {
            matrix(p + "attn_qkv.weight", Q + 2 * KV, H);
        } else {
            matrix(p + "attn_q.weight", Q, H);
            matrix(p + "attn_k.weight", KV, H);
            matrix(p + "attn_v.weight", KV, H);
        }
        if (s.qk_norm) {
            vector(p + "attn_q_norm.weight", std::uint64_t(s.head_dim), false);
            vector(p + "attn_k_norm.weight", std::uint64_t(s.head_dim), false);
        }
        if (s.qkv_bias) {
            vector(p + "attn_q.bias", Q, false);
            vector(p + "attn_k.bias", KV, false);
            vector(p + "attn_v.bias", KV, false);
        }
        matrix(p + "attn_output.weight", H, Q);
        vector(p + "ffn_norm.weight", H, true);
        if (s.arch == Arch::phi3) {
            matrix(p + "ffn_up.weight", 2 * F, H);  // gate rows, then up rows
        } else {
            matrix(p + "ffn_gate.weight", F, H);
            matrix(p + "ffn_up.weight", F, H);
        }
        matrix(p + "ffn_down.weight", H, F);
    }
    return w;
}

// Writes synthetic_model(s, seed) unless `path` already exists (the files are large and deterministic).
inline void write_synthetic_model(const std::string& path, const ModelShape& s, std::uint64_t seed = 42) {
    if (std::filesystem::exists(path)) return;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    synthetic_model(s, seed).write(path);
}

}  // namespace forge::gguf
