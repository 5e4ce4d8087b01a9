#pragma once
// Model<Traits>: a Llama-family transformer on the CPU. `Traits` is compiled traits (the shape is a
// compile-time constant and the file must match it) or `Dynamic` (the shape is read from the file).
// The same forward pass serves both, and decode (one token) and prefill (a batch) share every kernel,
// so a token's logits do not depend on which entry point computed them.
//
// A model is one sequence: its KV cache holds the tokens fed since reset(), at positions 0, 1, ... The
// sequence can be cut back to a prefix (truncate) and a prefix copied into another model of the same
// shape (copy_prefix_to), so a conversation continues without computing its history again.
// new_sequence() gives another sequence over the same weights and threads, and feed_together() feeds
// several sequences in shared passes: each pass reads the weights once for all their tokens.
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "forge/cpu/activation.hpp"
#include "forge/cpu/dispatch/select.hpp"
#include "forge/cpu/kernels/gemm.hpp"
#include "forge/cpu/kernels/row_lengths.hpp"
#include "forge/cpu/kernels/rope.hpp"
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
    class Core;
    struct Sequence;

public:
    static constexpr bool kCompiled = !std::is_same_v<Traits, Dynamic>;

    explicit Model(gguf::File file, ModelOptions opt = {}) : core_(std::make_shared<Core>(std::move(file), opt)), seq_(*core_) {}
    Model(Model&&) noexcept = default;
    Model& operator=(Model&&) noexcept = default;

    // Another sequence over this model's weights, threads and scratch, with a KV cache of its own (empty).
    // Sequences of one model may be fed from different threads: their passes take turns.
    Model new_sequence() const { return Model(core_); }

    const ModelShape& shape() const { return core_->shape(); }
    const gguf::File& file() const { return core_->file_; }
    int context() const { return core_->context_; }
    int position() const { return seq_.pos; }
    int threads() const { return core_->pool_.size(); }
    std::size_t kv_cache_bytes() const { return seq_.cache.bytes(); }
    // Whether every matmul runs kernels unrolled for its row length (always with compiled traits).
    bool row_length_kernels() const { return core_->row_length_kernels(); }
    // The CPU kernel set it computes with (cpu/dispatch/select.hpp): portable, avx2, avx512-vnni...
    std::string_view kernels() const { return core_->kernels(); }
    void reset() { truncate(0); }

    // Keeps the first `n` positions and forgets the rest; the next token fed goes to position n.
    void truncate(int n) {
        require_truncatable(n, seq_.pos);
        if (n != seq_.pos) seq_.has_logits = false;
        seq_.pos = n;
    }

    // The last fed token's logits, or empty when truncate() has dropped that token (or nothing was fed).
    std::span<const float> logits() const { return seq_.has_logits ? std::span<const float>(seq_.logits) : std::span<const float>(); }

    // Gives `to` (a model of the same shape) this model's first `n` positions; `to` continues at position n.
    void copy_prefix_to(Model& to, int n) const {
        require_copyable_prefix(n, seq_.pos, shape(), to.shape(), to.context());
        seq_.cache.copy_prefix_to(to.seq_.cache, n);
        to.seq_.pos = n;
        to.seq_.has_logits = false;
    }

    // Feeds one token at the next position; returns its logits (valid until the next call).
    std::span<const float> decode(std::int32_t token) { return prefill(std::span(&token, 1)); }

    // Feeds `tokens` at the next positions, in batches. Returns the last token's logits; with
    // `all_logits` (tokens.size() x vocab floats) every token's logits are written there too. `abort` is
    // asked between batches and layers: when it says stop, Cancelled is thrown and the batches done stay.
    std::span<const float> prefill(std::span<const std::int32_t> tokens, float* all_logits = nullptr, const AbortCheck& abort = {}) {
        const Feed feed{this, tokens};
        feed_passes(std::span(&feed, 1), all_logits, abort);
        return seq_.logits;
    }

    // One sequence's tokens for feed_together.
    struct Feed {
        Model* model;
        std::span<const std::int32_t> tokens;
    };

    // Feeds each sequence (all of one model: new_sequence) its tokens at its next positions, in passes of at
    // most max_batch tokens over all of them: N sequences decoding a token each read the weights once.
    // Afterwards each one's logits() are its last token's. `abort` as in prefill: on Cancelled every
    // sequence keeps the tokens of the passes done.
    static void feed_together(std::span<const Feed> feeds, const AbortCheck& abort = {}) { feed_passes(feeds, nullptr, abort); }

private:
    // A sequence's own state: the rest (weights, threads, scratch) is the Core its model shares.
    struct Sequence {
        explicit Sequence(const Core& c)
            : cache(c.shape().layers, c.context_, c.shape().kv_dim()), logits(std::size_t(c.shape().vocab)) {}
        KVCache cache;              // [layers][context][kv_dim] keys and values, f16
        int pos = 0;                // the next token's position
        bool has_logits = false;    // whether `logits` belong to the token at pos - 1
        std::vector<float> logits;  // [vocab]
    };

    // One token of a pass: which sequence it extends and where.
    struct Row {
        std::int32_t token;
        Sequence* seq;
        int pos;
        bool last;  // its feed's last token: the sequence gets its logits
    };

    explicit Model(std::shared_ptr<Core> core) : core_(std::move(core)), seq_(*core_) {}

    // The feeds' tokens as rows, run through the core in passes of at most max_batch rows. With
    // `all_logits` (one feed only) every row's logits are written there.
    static void feed_passes(std::span<const Feed> feeds, float* all_logits, const AbortCheck& abort) {
        if (feeds.empty()) return;
        Core& core = *feeds.front().model->core_;
        const auto& s = core.shape();
        std::size_t total = 0;
        for (const Feed& f : feeds) {
            if (f.model->core_.get() != &core) throw Error("only sequences of one model (new_sequence) can share a pass");
            for (const Feed& g : feeds)
                if (&g != &f && g.model == f.model) throw Error("a sequence cannot be fed twice in one pass");
            require_feedable(s, f.model->seq_.pos, core.context_, f.tokens);
            total += f.tokens.size();
        }
        std::lock_guard lock(core.mu_);
        std::vector<Row>& rows = core.rows_;  // kept between passes: a decode step allocates nothing
        rows.clear();
        for (const Feed& f : feeds) {
            Sequence& q = f.model->seq_;
            q.has_logits = false;
            for (std::size_t i = 0; i < f.tokens.size(); ++i) rows.push_back({f.tokens[i], &q, q.pos + int(i), i + 1 == f.tokens.size()});
        }
        const std::size_t V = std::size_t(s.vocab);
        for (std::size_t done = 0; done < total;) {
            const int n = int(std::min<std::size_t>(std::size_t(core.batch_), total - done));
            check_abort(abort, rows[done].pos);
            core.forward(&rows[done], n, all_logits ? all_logits + done * V : nullptr, abort);
            done += std::size_t(n);
        }
        if (all_logits) require_finite_logits({all_logits, total * V}, V, rows.front().pos);
        for (const Feed& f : feeds) require_finite_logits(f.model->seq_.logits, V, f.model->seq_.pos - 1);
    }

    // What the sequences of one model share: the file, its weights, the threads and the scratch of a pass.
    class Core {
    public:
        Core(gguf::File file, ModelOptions opt)
            : file_(std::move(file)), shape_(checked_shape(file_)), context_(resolve_context(opt.context, shape())),
              weights_(load_weights(file_, shape(), context_)), batch_(std::max(1, opt.max_batch)), pool_(resolve_threads(opt.threads)),
              kernels_(cpu::select_kernel_set()), rope_(batch_, shape().head_dim), gemm_hidden_(gemm_for(shape().hidden)), gemm_qdim_(gemm_for(shape().q_dim())),
              gemm_ffn_(gemm_for(shape().ffn)) {
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
            positions_.resize(B);
            scores_.resize(std::size_t(pool_.size()) * 4 * std::size_t(context_));
        }

        const ModelShape& shape() const {
            if constexpr (kCompiled) return Traits::shape;
            else return shape_;
        }
        bool row_length_kernels() const { return gemm_hidden_.cols && gemm_qdim_.cols && gemm_ffn_.cols; }
        std::string_view kernels() const { return kernels_.name; }

        // The transformer, for n rows (tokens of one or more sequences). A row marked `last` leaves its
        // logits in its sequence; with `all_logits` ([n][vocab]) every row's are written there too.
        void forward(const Row* rows, int n, float* all_logits, const AbortCheck& abort) {
            const auto& s = shape();
            const int H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.ffn;
            for (int t = 0; t < n; ++t) positions_[std::size_t(t)] = rows[t].pos;
            rope_.compute(std::span(positions_.data(), std::size_t(n)), s.rope_base,
                          weights_.rope_freqs.empty() ? nullptr : weights_.rope_freqs.data(), weights_.rope_mscale);
            plan_attention(rows, n);
            each_token(n, [&](int t) {
                float* x = &x_[std::size_t(t) * H];  // [H]
                kernels_.dequantize_row(weights_.token_embd.type, weights_.token_embd.row(rows[t].token), x, std::size_t(H));
                if (s.embedding_scale != 1.0f) cpu::scale_inplace(x, s.embedding_scale, H);
            });

            for (int l = 0; l < s.layers; ++l) {
                check_abort(abort, rows[0].pos);
                const LayerWeights& L = weights_.layers[std::size_t(l)];
                // Attention block.
                each_token(n, [&](int t) { kernels_.rmsnorm(&x_[std::size_t(t) * H], L.attn_norm, &xb_[std::size_t(t) * H], H, s.rms_eps); });
                in_.set(xb_.data(), n, H, H);
                gemm_hidden_.jobs({{L.wq, q_.data(), Q}, {L.wk, k_.data(), KV}, {L.wv, v_.data(), KV}}, in_, pool_);
                each_token(n, [&](int t) {
                    float *q = &q_[std::size_t(t) * Q], *k = &k_[std::size_t(t) * KV], *v = &v_[std::size_t(t) * KV];
                    if (s.qkv_bias) {
                        cpu::add_inplace(q, L.bq, Q);
                        cpu::add_inplace(k, L.bk, KV);
                        cpu::add_inplace(v, L.bv, KV);
                    }
                    if (s.qk_norm) {
                        for (int h = 0; h < s.heads; ++h) kernels_.rmsnorm(q + h * s.head_dim, L.q_norm, q + h * s.head_dim, s.head_dim, s.rms_eps);
                        for (int h = 0; h < s.kv_heads; ++h) kernels_.rmsnorm(k + h * s.head_dim, L.k_norm, k + h * s.head_dim, s.head_dim, s.rms_eps);
                    }
                    if (s.has_rope(l)) {
                        kernels_.rope(rope_.angles(t), rope_.half(), q, s.heads, s.rope_style);
                        kernels_.rope(rope_.angles(t), rope_.half(), k, s.kv_heads, s.rope_style);
                    }
                    rows[t].seq->cache.store(l, rows[t].pos, k, v, kernels_.store_f16);
                });
                attention(l, rows);
                in_.set(att_.data(), n, Q, Q);
                gemm_qdim_.one(L.wo, in_, xb_.data(), H, pool_);
                // Residual, then the feed-forward block (SwiGLU).
                each_token(n, [&](int t) {
                    residual_add(&x_[std::size_t(t) * H], &xb_[std::size_t(t) * H]);
                    kernels_.rmsnorm(&x_[std::size_t(t) * H], L.ffn_norm, &xb_[std::size_t(t) * H], H, s.rms_eps);
                });
                in_.set(xb_.data(), n, H, H);
                gemm_hidden_.jobs({{L.w_gate, gate_.data(), F}, {L.w_up, up_.data(), F}}, in_, pool_);
                each_token(n, [&](int t) { kernels_.silu_mul(&gate_[std::size_t(t) * F], &up_[std::size_t(t) * F], &gate_[std::size_t(t) * F], F); });
                in_.set(gate_.data(), n, F, F);
                gemm_ffn_.one(L.w_down, in_, xb_.data(), H, pool_);
                each_token(n, [&](int t) { residual_add(&x_[std::size_t(t) * H], &xb_[std::size_t(t) * H]); });
            }
            for (int t = 0; t < n; ++t) rows[t].seq->pos = rows[t].pos + 1;

            // Final norm and LM head: for every row when asked, else for the rows ending a feed, gathered
            // into consecutive rows of xb_ so the head's weights are read once for all of them.
            const std::size_t V = std::size_t(s.vocab);
            const auto head = [&](int m, float* out) {
                in_.set(xb_.data(), m, H, H);
                gemm_hidden_.one(weights_.output, in_, out, s.vocab, pool_);
                if (s.logit_scale != 1.0f) cpu::scale_inplace(out, 1.0f / s.logit_scale, m * s.vocab);
            };
            if (all_logits) {
                each_token(n, [&](int t) { kernels_.rmsnorm(&x_[std::size_t(t) * H], weights_.output_norm, &xb_[std::size_t(t) * H], H, s.rms_eps); });
                head(n, all_logits);
                for (int t = 0; t < n; ++t) take_logits(rows[t], all_logits + std::size_t(t) * V);
                return;
            }
            int m = 0;
            for (int t = 0; t < n; ++t)
                if (rows[t].last) kernels_.rmsnorm(&x_[std::size_t(t) * H], weights_.output_norm, &xb_[std::size_t(m++) * H], H, s.rms_eps);
            if (m == 0) return;
            head_.resize(std::size_t(m) * V);
            head(m, head_.data());
            for (int t = 0, i = 0; t < n; ++t)
                if (rows[t].last) take_logits(rows[t], &head_[std::size_t(i++) * V]);
        }

        gguf::File file_;
        ModelShape shape_;  // the file's shape; for compiled traits equal to Traits::shape
        int context_;
        ModelWeights weights_;
        int batch_;
        cpu::ThreadPool pool_;
        std::mutex mu_;  // one pass at a time
        std::vector<Row> rows_;  // the feeds being fed, as rows (guarded by mu_)

    private:
        static ModelShape checked_shape(const gguf::File& f) {
            const ModelShape found = gguf::model_shape(f);
            if constexpr (kCompiled) require_shape_matches(Traits::name, Traits::shape, found);
            else require_supported_shape(found);
            return found;
        }

        // The GEMMs for the model's three row lengths, unrolled over a whole row: compiled traits
        // instantiate their own when the program's own kernel set runs; otherwise the set has those the
        // program registered for its lengths, or the generic kernels. Either way the bits are the same.
        cpu::RowLengthGemm gemm_for(int cols) const {
            if constexpr (kCompiled) {
                if (!kernels_.dispatched && kernels_.name == cpu::isa::Native::name) {
                    if (cols == Traits::shape.hidden) return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.hidden>();
                    if (cols == Traits::shape.q_dim()) return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.q_dim()>();
                    return cpu::row_length_gemm<cpu::isa::Native, Traits::shape.ffn>();
                }
            }
            return kernels_.gemm_for(cols);
        }

        static void take_logits(const Row& r, const float* logits) {
            if (!r.last) return;
            std::copy_n(logits, r.seq->logits.size(), r.seq->logits.begin());
            r.seq->has_logits = true;
        }

        // x += residual_scale * y: a block's output [H] joining the residual stream [H].
        void residual_add(float* x, float* y) {
            const auto& s = shape();
            if (s.residual_scale != 1.0f) cpu::scale_inplace(y, s.residual_scale, s.hidden);
            cpu::add_inplace(x, y, s.hidden);
        }

        // f(t) for every token of the pass, spread over the threads when there is more than one.
        template <class F>
        void each_token(int n, F&& f) {
            if (n == 1) return f(0);
            pool_.parallel_for(std::size_t(n), [&](std::size_t b, std::size_t e) {
                for (std::size_t t = b; t < e; ++t) f(int(t));
            });
        }

        // The pass's attention work, the same for every layer: per run of consecutive positions of one
        // sequence, groups of four tokens (which share each converted K/V row) and single tokens for the
        // run's last n % 4 (all of decode) and with a sliding window. Both give the same bits.
        void plan_attention(const Row* rows, int n) {
            groups_.clear();
            for (int r = 0; r < n;) {
                int run = 1;
                while (r + run < n && rows[r + run].seq == rows[r].seq && rows[r + run].pos == rows[r].pos + run) ++run;
                const int fours = shape().sliding_window > 0 ? 0 : run / 4;
                for (int i = 0; i < fours; ++i) groups_.push_back({r + 4 * i, 4});
                for (int i = 4 * fours; i < run; ++i) groups_.push_back({r + i, 1});
                r += run;
            }
        }

        // Causal attention of the pass's queries, each over its own sequence's cache (this pass's K/V
        // already stored), limited to the last `sliding_window` positions when the model has one.
        void attention(int layer, const Row* rows) {
            const auto& s = shape();
            const cpu::AttentionShape as{s.heads, s.kv_heads, s.head_dim, s.kq_scale()};
            const std::size_t heads = std::size_t(s.heads), Q = std::size_t(s.q_dim()), C = std::size_t(context_);
            const std::size_t units = groups_.size() * heads;
            const int parts = pool_.parts_for(units);
            pool_.run(parts, [&](int claimed, int thread) {
                // Parts are claimed in order and a later position attends over more: the last part goes first,
                // so the longest work is not what the other threads wait on at the end.
                const std::size_t part = std::size_t(parts - 1 - claimed);
                float* scores = &scores_[std::size_t(thread) * 4 * C];
                for (std::size_t i = units * part / std::size_t(parts); i < units * (part + 1) / std::size_t(parts); ++i) {
                    const int h = int(i % heads);
                    const auto [t, count] = groups_[i / heads];
                    const Row& r = rows[t];
                    const KVCache& cache = r.seq->cache;
                    const float* q = &q_[std::size_t(t) * Q];
                    float* out = &att_[std::size_t(t) * Q];
                    if (count == 4) {
                        kernels_.attend_tokens(as, h, q, Q, cache.k(layer), cache.v(layer), 0, r.pos, scores, C, out, Q);
                    } else {
                        const int first = s.sliding_window > 0 ? std::max(0, r.pos - s.sliding_window + 1) : 0;
                        kernels_.attend_head(as, h, q, cache.k(layer), cache.v(layer), first, r.pos, scores, out);
                    }
                }
            });
        }

        struct Group {
            int row, count;  // `count` (1 or 4) consecutive rows of one sequence
        };

        cpu::KernelSet kernels_;  // every kernel the pass computes with, for the instruction set chosen at load
        cpu::RopeTable rope_;  // the pass's rotation angles, shared by every layer
        cpu::GemmInput in_;  // the input of the next matmuls, quantized once for all of them
        cpu::RowLengthGemm gemm_hidden_, gemm_qdim_, gemm_ffn_;  // for rows of hidden, heads*head_dim, ffn values
        std::vector<float> x_, xb_, q_, k_, v_, att_, gate_, up_;  // [batch][hidden, q_dim, kv_dim or ffn]
        std::vector<float> head_;  // [sequences ending a feed in the pass][vocab]
        std::vector<int> positions_;  // [batch]
        std::vector<Group> groups_;
        std::vector<float> scores_;  // attention scores: four rows of `context_` per thread
    };

    std::shared_ptr<Core> core_;  // shared by every sequence of this model (new_sequence)
    Sequence seq_;
};

}  // namespace forge
