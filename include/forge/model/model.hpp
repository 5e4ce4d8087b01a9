#pragma once
// Model<Traits>: a Llama-family transformer on the CPU. `Traits` is compiled traits (the shape is a
// compile-time constant and the file must match it) or `Dynamic` (the shape is read from the file).
// The same forward pass serves both, and decode (one token) and prefill (a batch) share every kernel,
// so a token's logits do not depend on which entry point computed them.
//
// A model is one sequence: its KV cache holds the tokens fed since reset(), at positions 0, 1, ... The
// sequence can be cut back to a prefix (truncate) and a prefix copied into another model of the same
// shape (copy_prefix_to), so a conversation continues without computing its history again.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "forge/cpu/activation.hpp"
#include "forge/cpu/kernels/attention.hpp"
#include "forge/cpu/kernels/elementwise.hpp"
#include "forge/cpu/kernels/gemm.hpp"
#include "forge/cpu/kernels/row_lengths.hpp"
#include "forge/cpu/kernels/rope.hpp"
#include "forge/cpu/rmsnorm.hpp"
#include "forge/cpu/thread_pool.hpp"
#include "forge/gguf/model_shape.hpp"
#include "forge/model/kv_cache.hpp"
#include "forge/model/options.hpp"
#include "forge/model/prefill.hpp"
#include "forge/model/sequence.hpp"
#include "forge/model/weights.hpp"
#include "forge/traits/model_traits.hpp"

namespace forge {

template <class Traits = Dynamic>
    requires std::same_as<Traits, Dynamic> || ModelTraits<Traits>
class Model {
public:
    static constexpr bool kCompiled = !std::is_same_v<Traits, Dynamic>;

    explicit Model(gguf::File file, ModelOptions opt = {})
        : file_(std::move(file)), shape_(checked_shape(file_)), context_(resolve_context(opt.context, shape())),
          weights_(load_weights(file_, shape(), context_)), batch_(std::max(1, opt.max_batch)), pool_(std::make_unique<cpu::ThreadPool>(resolve_threads(opt.threads))),
          cache_(shape().layers, context_, shape().kv_dim()), rope_(batch_, shape().head_dim),
          gemm_hidden_(gemm_for(shape().hidden)), gemm_qdim_(gemm_for(shape().q_dim())), gemm_ffn_(gemm_for(shape().ffn)) {
        if constexpr (kCompiled) require_layer_type(weights_, Traits::shape.weights);
        const auto& s = shape();
        const auto B = std::size_t(batch_);
        x_.resize(B * s.hidden);
        xb_.resize(B * s.hidden);
        q_.resize(B * s.q_dim());
        k_.resize(B * s.kv_dim());
        v_.resize(B * s.kv_dim());
        att_.resize(B * s.q_dim());
        gate_.resize(B * s.ffn);
        up_.resize(B * s.ffn);
        logits_.resize(std::size_t(s.vocab));
        scores_.resize(std::size_t(pool_->size()) * 4 * std::size_t(context_));
    }

    const ModelShape& shape() const {
        if constexpr (kCompiled) return Traits::shape;
        else return shape_;
    }
    const gguf::File& file() const { return file_; }
    int context() const { return context_; }
    int position() const { return pos_; }
    int threads() const { return pool_->size(); }
    std::size_t kv_cache_bytes() const { return cache_.bytes(); }
    // Whether every matmul runs kernels unrolled for its row length (always with compiled traits).
    bool row_length_kernels() const { return gemm_hidden_.cols && gemm_qdim_.cols && gemm_ffn_.cols; }
    void reset() { truncate(0); }

    // Keeps the first `n` positions and forgets the rest; the next token fed goes to position n.
    void truncate(int n) {
        require_truncatable(n, pos_);
        if (n != pos_) has_logits_ = false;
        pos_ = n;
    }

    // The last fed token's logits, or empty when truncate() has dropped that token (or nothing was fed).
    std::span<const float> logits() const { return has_logits_ ? std::span<const float>(logits_) : std::span<const float>(); }

    // Gives `to` (a model of the same shape) this model's first `n` positions; `to` continues at position n.
    void copy_prefix_to(Model& to, int n) const {
        require_copyable_prefix(n, pos_, shape(), to.shape(), to.context_);
        cache_.copy_prefix_to(to.cache_, n);
        to.pos_ = n;
        to.has_logits_ = false;
    }

    // Feeds one token at the next position; returns its logits (valid until the next call).
    std::span<const float> decode(std::int32_t token) { return prefill(std::span(&token, 1)); }

    // Feeds `tokens` at the next positions, in batches. Returns the last token's logits; with
    // `all_logits` (tokens.size() x vocab floats) every token's logits are written there too. `abort` is
    // asked between batches and layers: when it says stop, Cancelled is thrown and the batches done stay.
    std::span<const float> prefill(std::span<const std::int32_t> tokens, float* all_logits = nullptr, const AbortCheck& abort = {}) {
        has_logits_ = false;
        prefill_in_batches(shape(), pos_, context_, batch_, tokens, all_logits, logits_, abort, [&](const std::int32_t* t, int n, float* all) {
            forward(t, n, all, abort);
            has_logits_ = true;
        });
        return logits_;
    }

private:
    static ModelShape checked_shape(const gguf::File& f) {
        const ModelShape found = gguf::model_shape(f);
        if constexpr (kCompiled) require_shape_matches(Traits::name, Traits::shape, found);
        else require_supported_shape(found);
        return found;
    }

    // The GEMMs for the model's three row lengths, unrolled over a whole row: compiled traits instantiate
    // their own; a runtime shape takes those the program registered for its lengths (the generic kernels
    // otherwise). Either way the bits are the same.
    static cpu::RowLengthGemm gemm_for(int cols) {
        if constexpr (kCompiled) {
            if (cols == Traits::shape.hidden) return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.hidden>();
            if (cols == Traits::shape.q_dim()) return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.q_dim()>();
            return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.ffn>();
        } else {
            return cpu::RowLengthRegistry::instance().find(cols);
        }
    }

    // The transformer, for n tokens at positions pos_ .. pos_+n-1.
    void forward(const std::int32_t* tokens, int n, float* all_logits, const AbortCheck& abort) {
        const auto& s = shape();
        const int H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.ffn;
        rope_.compute(pos_, n, s.rope_base, weights_.rope_freqs.empty() ? nullptr : weights_.rope_freqs.data(), weights_.rope_mscale);
        each_token(n, [&](int t) {
            float* x = &x_[std::size_t(t) * H];  // [H]
            dequantize_row(weights_.token_embd.type, weights_.token_embd.row(tokens[t]), x, std::size_t(H));
            if (s.embedding_scale != 1.0f) cpu::scale_inplace(x, s.embedding_scale, H);
        });

        for (int l = 0; l < s.layers; ++l) {
            check_abort(abort, pos_);
            const LayerWeights& L = weights_.layers[std::size_t(l)];
            // Attention block.
            each_token(n, [&](int t) { cpu::rmsnorm(&x_[std::size_t(t) * H], L.attn_norm, &xb_[std::size_t(t) * H], H, s.rms_eps); });
            in_.set(xb_.data(), n, H, H);
            gemm_hidden_.jobs({{L.wq, q_.data(), Q}, {L.wk, k_.data(), KV}, {L.wv, v_.data(), KV}}, in_, *pool_);
            each_token(n, [&](int t) {
                float *q = &q_[std::size_t(t) * Q], *k = &k_[std::size_t(t) * KV], *v = &v_[std::size_t(t) * KV];
                if (s.qkv_bias) {
                    cpu::add_inplace(q, L.bq, Q);
                    cpu::add_inplace(k, L.bk, KV);
                    cpu::add_inplace(v, L.bv, KV);
                }
                if (s.qk_norm) {
                    for (int h = 0; h < s.heads; ++h) cpu::rmsnorm(q + h * s.head_dim, L.q_norm, q + h * s.head_dim, s.head_dim, s.rms_eps);
                    for (int h = 0; h < s.kv_heads; ++h) cpu::rmsnorm(k + h * s.head_dim, L.k_norm, k + h * s.head_dim, s.head_dim, s.rms_eps);
                }
                if (s.has_rope(l)) {
                    rope_.apply(q, s.heads, t, s.rope_style);
                    rope_.apply(k, s.kv_heads, t, s.rope_style);
                }
                cache_.store(l, pos_ + t, k, v);
            });
            attention(l, n);
            in_.set(att_.data(), n, Q, Q);
            gemm_qdim_.one(L.wo, in_, xb_.data(), H, *pool_);
            // Residual, then the feed-forward block (SwiGLU).
            each_token(n, [&](int t) {
                residual_add(&x_[std::size_t(t) * H], &xb_[std::size_t(t) * H]);
                cpu::rmsnorm(&x_[std::size_t(t) * H], L.ffn_norm, &xb_[std::size_t(t) * H], H, s.rms_eps);
            });
            in_.set(xb_.data(), n, H, H);
            gemm_hidden_.jobs({{L.w_gate, gate_.data(), F}, {L.w_up, up_.data(), F}}, in_, *pool_);
            each_token(n, [&](int t) { cpu::silu_mul_fast(&gate_[std::size_t(t) * F], &up_[std::size_t(t) * F], &gate_[std::size_t(t) * F], F); });
            in_.set(gate_.data(), n, F, F);
            gemm_ffn_.one(L.w_down, in_, xb_.data(), H, *pool_);
            each_token(n, [&](int t) { residual_add(&x_[std::size_t(t) * H], &xb_[std::size_t(t) * H]); });
        }

        // Final norm and LM head: for every token when asked, else only the last.
        const int first = all_logits ? 0 : n - 1;
        for (int t = first; t < n; ++t) cpu::rmsnorm(&x_[std::size_t(t) * H], weights_.output_norm, &xb_[std::size_t(t) * H], H, s.rms_eps);
        if (all_logits) {
            in_.set(xb_.data(), n, H, H);
            gemm_hidden_.one(weights_.output, in_, all_logits, s.vocab, *pool_);
            if (s.logit_scale != 1.0f) cpu::scale_inplace(all_logits, 1.0f / s.logit_scale, n * s.vocab);
            std::copy_n(all_logits + std::size_t(n - 1) * s.vocab, s.vocab, logits_.begin());
        } else {
            in_.set(&xb_[std::size_t(n - 1) * H], 1, H, H);
            gemm_hidden_.one(weights_.output, in_, logits_.data(), s.vocab, *pool_);
            if (s.logit_scale != 1.0f) cpu::scale_inplace(logits_.data(), 1.0f / s.logit_scale, s.vocab);
        }
        pos_ += n;
    }

    // x += residual_scale * y: a block's output [H] joining the residual stream [H].
    void residual_add(float* x, float* y) {
        const auto& s = shape();
        if (s.residual_scale != 1.0f) cpu::scale_inplace(y, s.residual_scale, s.hidden);
        cpu::add_inplace(x, y, s.hidden);
    }

    // f(t) for every token of the batch, spread over the threads when there is more than one.
    template <class F>
    void each_token(int n, F&& f) {
        if (n == 1) return f(0);
        pool_->parallel_for(std::size_t(n), [&](std::size_t b, std::size_t e) {
            for (std::size_t t = b; t < e; ++t) f(int(t));
        });
    }

    // Causal attention of the batch's n queries over the cache (the batch's own K/V already stored),
    // limited to the last `sliding_window` positions when the model has one. A part of the work is a
    // head of four consecutive tokens (which share each converted K/V row), or of one token for the
    // batch's last n % 4 (all of decode) and with a sliding window. Both give the same bits.
    void attention(int layer, int n) {
        const auto& s = shape();
        const cpu::AttentionShape as{s.heads, s.kv_heads, s.head_dim, s.kq_scale()};
        const std::size_t heads = std::size_t(s.heads), Q = std::size_t(s.q_dim()), C = std::size_t(context_);
        const int fours = s.sliding_window > 0 ? 0 : n / 4;
        const std::size_t four_units = std::size_t(fours) * heads, units = four_units + std::size_t(n - 4 * fours) * heads;
        const int parts = pool_->parts_for(units);
        pool_->run(parts, [&](int part, int thread) {
            float* scores = &scores_[std::size_t(thread) * 4 * C];
            for (std::size_t i = units * std::size_t(part) / std::size_t(parts); i < units * std::size_t(part + 1) / std::size_t(parts); ++i) {
                const int h = int(i % heads);
                if (i < four_units) {
                    const int t = 4 * int(i / heads);
                    cpu::attend_tokens_fast(as, h, &q_[std::size_t(t) * Q], Q, cache_.k(layer), cache_.v(layer), 0, pos_ + t, scores, C,
                                            &att_[std::size_t(t) * Q], Q);
                } else {
                    const int t = 4 * fours + int((i - four_units) / heads);
                    const int last = pos_ + t;
                    const int first = s.sliding_window > 0 ? std::max(0, last - s.sliding_window + 1) : 0;
                    cpu::attend_head_fast(as, h, &q_[std::size_t(t) * Q], cache_.k(layer), cache_.v(layer), first, last, scores,
                                          &att_[std::size_t(t) * Q]);
                }
            }
        });
    }

    gguf::File file_;
    ModelShape shape_;  // the file's shape; for compiled traits equal to Traits::shape
    int context_;
    ModelWeights weights_;
    int batch_;
    int pos_ = 0;
    bool has_logits_ = false;
    std::unique_ptr<cpu::ThreadPool> pool_;  // held by pointer so that the model can move
    KVCache cache_;
    cpu::RopeTable rope_;  // the batch's rotation angles, shared by every layer
    cpu::GemmInput in_;  // the input of the next matmuls, quantized once for all of them
    cpu::RowLengthGemm gemm_hidden_, gemm_qdim_, gemm_ffn_;  // for rows of hidden, heads*head_dim, ffn values
    std::vector<float> x_, xb_, q_, k_, v_, att_, gate_, up_, logits_;
    std::vector<float> scores_;  // attention scores: four rows of `context_` per thread
};

}  // namespace forge
