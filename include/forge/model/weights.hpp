#pragma once
// The tensors of a Llama-family model, looked up by their GGUF names and checked against the shape
// before anything runs: a missing tensor, a wrong size or a type forge cannot compute is an error here,
// not garbage later.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "forge/cpu/weight_view.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/traits/model_shape.hpp"

namespace forge {

struct LayerWeights {
    const float* attn_norm;
    cpu::WeightView wq, wk, wv, wo;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    const float* ffn_norm;
    cpu::WeightView w_gate, w_up, w_down;
};

struct ModelWeights {
    cpu::WeightView token_embd;
    std::vector<LayerWeights> layers;
    const float* output_norm;
    cpu::WeightView output;  // token_embd itself when the embeddings are tied
    // RoPE frequency factors: head_dim/2 values, each finite and positive, dividing the angle of its pair
    // (cpu::rope). The optional `rope_freqs.weight` (Llama 3's scaling) times the linear scaling factor;
    // empty when the file has neither.
    std::vector<float> rope_freqs;
};

namespace detail {

inline std::string unsupported_type(const gguf::TensorInfo& t) {
    return "tensor '" + t.name + "' has type " + std::string(t.type_name()) +
           ", which forge cannot compute with (F32, F16, BF16, Q8_0, Q4_0); convert the file first: "
           "forge quantize IN.gguf OUT.gguf q8_0";
}

inline cpu::WeightView matrix(const gguf::File& f, const std::string& name, int rows, int cols) {
    const auto& t = f.tensor(name);
    if (t.dims.size() != 2 || t.dims[0] != std::uint64_t(cols) || t.dims[1] != std::uint64_t(rows))
        throw Error("tensor '" + name + "' should be [" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
    const auto* info = dtype_info(t.type_id);
    if (!info || !info->computable) throw Error(unsupported_type(t));
    return {t.data, t.dtype(), rows, cols};
}

inline const float* vector_f32(const gguf::File& f, const std::string& name, int n) {
    const auto& t = f.tensor(name);
    if (t.dims.size() != 1 || t.dims[0] != std::uint64_t(n))
        throw Error("tensor '" + name + "' should be [" + std::to_string(n) + "]");
    if (t.dtype() != DType::F32)
        throw Error("tensor '" + name + "' has type " + std::string(t.type_name()) + "; norms and biases must be F32");
    return reinterpret_cast<const float*>(t.data);
}

// The optional `rope_freqs.weight`, copied out of the file once checked: llama.cpp's converter writes it
// for Llama 3.1 / 3.2 as head_dim/2 F32 values (llama.cpp reads it as [n_rot/2], n_rot = head_dim here).
inline std::vector<float> rope_freqs(const gguf::File& f, int head_dim) {
    const gguf::TensorInfo* t = f.find_tensor("rope_freqs.weight");
    if (!t) return {};
    const std::string what = "tensor 'rope_freqs.weight' ";
    const int n = head_dim / 2;
    if (t->dims.size() != 1 || t->dims[0] != std::uint64_t(n)) {
        std::string found;
        for (const auto d : t->dims) found += (found.empty() ? "" : ", ") + std::to_string(d);
        throw Error(what + "should be [" + std::to_string(n) + "] (head_dim / 2 RoPE frequency factors), not [" + found + "]");
    }
    if (t->dtype() != DType::F32)
        throw Error(what + "has type " + std::string(t->type_name()) + "; RoPE frequency factors must be F32");
    std::vector<float> v(static_cast<std::size_t>(n));
    std::memcpy(v.data(), t->data, v.size() * sizeof(float));  // the file's alignment may be below 4
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i]) || !(v[i] > 0.0f))
            throw Error(what + "value " + std::to_string(i) + " is " + std::to_string(v[i]) +
                        "; RoPE frequency factors must be finite and positive");
    return v;
}

// RoPE as the file's metadata asks for it: refused where forge would compute something else (rotating
// only part of each head; YaRN, LongRoPE and other scalings), else the linear scaling factor: 1 when
// there is none. Linear scaling divides positions by the factor, i.e. every pair's angle, so it folds
// into the frequency factors.
inline float rope_linear_factor(const gguf::File& f, const ModelShape& s) {
    const std::string p = f.get_string("general.architecture").value_or("") + ".";
    if (const auto n = f.get_uint(p + "rope.dimension_count"); n && *n != std::uint64_t(s.head_dim))
        throw Error("metadata key '" + p + "rope.dimension_count' = " + std::to_string(*n) +
                    ": rotating part of each head (RoPE on " + std::to_string(*n) + " of head_dim " +
                    std::to_string(s.head_dim) + ") is not supported");
    const auto type = f.get_string(p + "rope.scaling.type");
    // YaRN with factor 1 interpolates nothing (and scales attention by 1): plain RoPE.
    if (type == "yarn" && f.get_float(p + "rope.scaling.factor").value_or(1.0) == 1.0 &&
        f.get_float(p + "rope.scaling.attn_factor").value_or(1.0) == 1.0)
        return 1.0f;
    std::string key;
    if (type == "linear") key = p + "rope.scaling.factor";
    else if (!type && f.find(p + "rope.scale_linear")) key = p + "rope.scale_linear";  // the older key
    else if (type && *type != "none")
        throw Error("metadata key '" + p + "rope.scaling.type' = '" + *type +
                    "': forge computes RoPE unscaled, with linear scaling or with Llama 3's frequency factors");
    if (key.empty()) return 1.0f;
    const auto factor = f.get_float(key);
    if (!factor) throw Error("metadata key '" + key + "' is missing: linear RoPE scaling needs its factor");
    if (!std::isfinite(*factor) || !(*factor > 0.0) || *factor > 1e6)
        throw Error("metadata key '" + key + "' = " + std::to_string(*factor) + " is not a usable RoPE scaling factor");
    return float(*factor);
}

}  // namespace detail

inline ModelWeights load_weights(const gguf::File& f, const ModelShape& s) {
    using detail::matrix;
    using detail::vector_f32;
    ModelWeights w;
    w.token_embd = matrix(f, "token_embd.weight", s.vocab, s.hidden);
    w.output_norm = vector_f32(f, "output_norm.weight", s.hidden);
    w.output = s.tied_embeddings ? w.token_embd : matrix(f, "output.weight", s.vocab, s.hidden);
    w.rope_freqs = detail::rope_freqs(f, s.head_dim);
    if (const float k = detail::rope_linear_factor(f, s); k != 1.0f) {
        if (w.rope_freqs.empty()) w.rope_freqs.assign(std::size_t(s.head_dim / 2), 1.0f);
        for (float& v : w.rope_freqs) v *= k;
    }
    for (int l = 0; l < s.layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights L{};
        L.attn_norm = vector_f32(f, p + "attn_norm.weight", s.hidden);
        L.wq = matrix(f, p + "attn_q.weight", s.q_dim(), s.hidden);
        L.wk = matrix(f, p + "attn_k.weight", s.kv_dim(), s.hidden);
        L.wv = matrix(f, p + "attn_v.weight", s.kv_dim(), s.hidden);
        L.wo = matrix(f, p + "attn_output.weight", s.hidden, s.q_dim());
        if (s.qkv_bias) {
            L.bq = vector_f32(f, p + "attn_q.bias", s.q_dim());
            L.bk = vector_f32(f, p + "attn_k.bias", s.kv_dim());
            L.bv = vector_f32(f, p + "attn_v.bias", s.kv_dim());
        }
        L.ffn_norm = vector_f32(f, p + "ffn_norm.weight", s.hidden);
        L.w_gate = matrix(f, p + "ffn_gate.weight", s.ffn, s.hidden);
        L.w_up = matrix(f, p + "ffn_up.weight", s.ffn, s.hidden);
        L.w_down = matrix(f, p + "ffn_down.weight", s.hidden, s.ffn);
        w.layers.push_back(L);
    }
    return w;
}

// Compiled traits bake the layer weight type into their kernels, so every layer matrix must have it.
inline void require_layer_type(const ModelWeights& w, DType type) {
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
        const auto& L = w.layers[l];
        for (const auto* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
            if (m->type != type)
                throw Error("layer " + std::to_string(l) + " has a " + std::string(dtype_name(m->type)) +
                            " matrix where the compiled traits expect " + std::string(dtype_name(type)) +
                            " throughout; run it without compiled traits");
    }
}

}  // namespace forge
