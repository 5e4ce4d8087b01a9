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
    cpu::WeightView wq, wk, wv, wo;  // wq, wk, wv: views into attn_qkv where the file fuses them (phi3)
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    const float *q_norm = nullptr, *k_norm = nullptr;  // qk_norm: head_dim weights each
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
    // empty when the file has neither. LongRoPE's factors (phi3) are the short or the long set, as the
    // context is within the trained one or beyond it.
    std::vector<float> rope_freqs;
    float rope_mscale = 1.0f;  // LongRoPE's attention factor: cos and sin are multiplied by it
};

namespace detail {

inline std::string unsupported_type(const gguf::TensorInfo& t) {
    return "tensor '" + t.name + "' has type " + std::string(t.type_name()) +
           ", which forge cannot compute with (" FORGE_COMPUTABLE_TYPES "); convert the file first: "
           "forge quantize IN.gguf OUT.gguf q8_0";
}

// Rows [first, first + n) of a matrix: one part of a fused tensor.
inline cpu::WeightView rows_of(const cpu::WeightView& m, int first, int n) {
    return {m.row(first), m.type, n, m.cols};
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
// RoPE frequency factors from tensor `name`: head_dim/2 finite, positive F32 values (llama.cpp reads
// them as [n_rot/2], n_rot = head_dim here), copied out of the file once checked.
inline std::vector<float> checked_rope_factors(const gguf::File& f, const std::string& name, int head_dim) {
    const gguf::TensorInfo& t = f.tensor(name);
    const std::string what = "tensor '" + name + "' ";
    const int n = head_dim / 2;
    if (t.dims.size() != 1 || t.dims[0] != std::uint64_t(n)) {
        std::string found;
        for (const auto d : t.dims) found += (found.empty() ? "" : ", ") + std::to_string(d);
        throw Error(what + "should be [" + std::to_string(n) + "] (head_dim / 2 RoPE frequency factors), not [" + found + "]");
    }
    if (t.dtype() != DType::F32)
        throw Error(what + "has type " + std::string(t.type_name()) + "; RoPE frequency factors must be F32");
    std::vector<float> v(static_cast<std::size_t>(n));
    std::memcpy(v.data(), t.data, v.size() * sizeof(float));  // the file's alignment may be below 4
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i]) || !(v[i] > 0.0f))
            throw Error(what + "value " + std::to_string(i) + " is " + std::to_string(v[i]) +
                        "; RoPE frequency factors must be finite and positive");
    return v;
}

// The optional `rope_freqs.weight`: llama.cpp's converter writes it for Llama 3.1 / 3.2.
inline std::vector<float> rope_freqs(const gguf::File& f, int head_dim) {
    if (!f.find_tensor("rope_freqs.weight")) return {};
    return checked_rope_factors(f, "rope_freqs.weight", head_dim);
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
    if (type == "longrope") {  // its factors are tensors: longrope_factors()
        if (f.find_tensor("rope_factors_short.weight") || f.find_tensor("rope_factors_long.weight")) return 1.0f;
        throw Error("metadata key '" + p + "rope.scaling.type' = 'longrope' but the file has neither "
                    "'rope_factors_short.weight' nor 'rope_factors_long.weight': LongRoPE needs its factors");
    }
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

// LongRoPE (phi3's 128k-context models): `rope_factors_short.weight` while the context is within the
// trained one (`rope.scaling.original_context_length`, else the model's), `rope_factors_long.weight`
// beyond it, and cos and sin scaled by `rope.scaling.attn_factor`, as llama.cpp does (`rope_freqs.weight`
// takes precedence). The converter marks LongRoPE by those tensors alone.
inline void longrope_factors(const gguf::File& f, const ModelShape& s, int context, ModelWeights& w) {
    if (!f.find_tensor("rope_factors_short.weight") && !f.find_tensor("rope_factors_long.weight")) return;
    const std::string p = std::string(arch_name(s.arch)) + ".";
    const auto trained = f.get_uint(p + "rope.scaling.original_context_length").value_or(std::uint64_t(s.max_context));
    w.rope_freqs = checked_rope_factors(f, std::uint64_t(context) > trained ? "rope_factors_long.weight" : "rope_factors_short.weight",
                                        s.head_dim);
    const double m = f.get_float(p + "rope.scaling.attn_factor").value_or(1.0);
    if (!std::isfinite(m) || !(m > 0.0) || m > 1e3)
        throw Error("metadata key '" + p + "rope.scaling.attn_factor' = " + std::to_string(m) + " is not a usable factor");
    w.rope_mscale = float(m);
}

// Tensors of features forge does not compute, refused by name rather than ignored.
inline void refuse_unsupported_tensors(const gguf::File& f, const std::string& layer) {
    for (const char* t : {"attn_output.bias", "ffn_gate.bias", "ffn_up.bias", "ffn_down.bias", "ffn_gate_inp.weight"})
        if (f.find_tensor(layer + t))
            throw Error("tensor '" + layer + t + "': forge does not compute " +
                        (std::string_view(t) == "ffn_gate_inp.weight" ? "mixture-of-experts layers" : "biases on that matrix"));
}

}  // namespace detail

// The weights of a model of shape `s` run with a context of `context` positions (LongRoPE's factors
// depend on it).
inline ModelWeights load_weights(const gguf::File& f, const ModelShape& s, int context) {
    using detail::matrix;
    using detail::vector_f32;
    ModelWeights w;
    w.token_embd = matrix(f, "token_embd.weight", s.vocab, s.hidden);
    w.output_norm = vector_f32(f, "output_norm.weight", s.hidden);
    w.output = s.tied_embeddings ? w.token_embd : matrix(f, "output.weight", s.vocab, s.hidden);
    w.rope_freqs = detail::rope_freqs(f, s.head_dim);
    if (w.rope_freqs.empty()) detail::longrope_factors(f, s, context, w);
    if (const float k = detail::rope_linear_factor(f, s); k != 1.0f) {
        if (w.rope_freqs.empty()) w.rope_freqs.assign(std::size_t(s.head_dim / 2), 1.0f);
        for (float& v : w.rope_freqs) v *= k;
    }
    for (int l = 0; l < s.layers; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights L{};
        L.attn_norm = vector_f32(f, p + "attn_norm.weight", s.hidden);
        detail::refuse_unsupported_tensors(f, p);
        if (f.find_tensor(p + "attn_qkv.weight")) {
            const auto qkv = matrix(f, p + "attn_qkv.weight", s.q_dim() + 2 * s.kv_dim(), s.hidden);
            L.wq = detail::rows_of(qkv, 0, s.q_dim());
            L.wk = detail::rows_of(qkv, s.q_dim(), s.kv_dim());
            L.wv = detail::rows_of(qkv, s.q_dim() + s.kv_dim(), s.kv_dim());
        } else {
            L.wq = matrix(f, p + "attn_q.weight", s.q_dim(), s.hidden);
            L.wk = matrix(f, p + "attn_k.weight", s.kv_dim(), s.hidden);
            L.wv = matrix(f, p + "attn_v.weight", s.kv_dim(), s.hidden);
        }
        L.wo = matrix(f, p + "attn_output.weight", s.hidden, s.q_dim());
        if (s.qk_norm) {
            L.q_norm = vector_f32(f, p + "attn_q_norm.weight", s.head_dim);
            L.k_norm = vector_f32(f, p + "attn_k_norm.weight", s.head_dim);
        }
        if (s.qkv_bias) {
            L.bq = vector_f32(f, p + "attn_q.bias", s.q_dim());
            L.bk = vector_f32(f, p + "attn_k.bias", s.kv_dim());
            L.bv = vector_f32(f, p + "attn_v.bias", s.kv_dim());
        }
        L.ffn_norm = vector_f32(f, p + "ffn_norm.weight", s.hidden);
        if (s.arch == Arch::phi3) {  // gate and up fused, gate first (llama.cpp's SwiGLU of the halves)
            const auto up = matrix(f, p + "ffn_up.weight", 2 * s.ffn, s.hidden);
            L.w_gate = detail::rows_of(up, 0, s.ffn);
            L.w_up = detail::rows_of(up, s.ffn, s.ffn);
        } else {
            L.w_gate = matrix(f, p + "ffn_gate.weight", s.ffn, s.hidden);
            L.w_up = matrix(f, p + "ffn_up.weight", s.ffn, s.hidden);
        }
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
