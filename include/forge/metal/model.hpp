#pragma once
// The GPU forward pass, written once against metal::Device: the same transformer as Model<Traits>
// (model/model.hpp), as a sequence of kernel launches over an f16 KV cache, for decode (one token:
// mat-vec and split-K flash attention) and batched prefill (GEMM for quantized weights, causal flash
// attention), with temperature sampling on the device. The Metal executor and the emulator run it alike.
#include <algorithm>
#include <array>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/gguf/model_shape.hpp"
#include "forge/metal/device.hpp"
#include "forge/metal/launch.hpp"
#include "forge/metal_src/library.hpp"
#include "forge/model/any_model.hpp"
#include "forge/model/prefill.hpp"
#include "forge/model/sequence.hpp"
#include "forge/model/weights.hpp"
#include "forge/sample/categorical.hpp"

namespace forge::metal {

// The MSL library a GPU model runs. Compiled traits' library is a constant of the program
// (metal_src::library<T>, its rules checked by static_assert); a shape read from a file gets the same
// library assembled by the same code when the model opens, with kernels for exactly the weight types of
// the file's matrices. For equal shapes and weight types the two texts are byte-identical.
using LibraryPtr = std::shared_ptr<const metal_src::Library>;

template <ModelTraits T>
LibraryPtr compiled_library() {
    return LibraryPtr(&metal_src::library<T>, [](const metal_src::Library*) {});
}

// `weight_types`: the types of the file's matrices (the library holds kernels for each); without it, the
// types compiled traits of the shape get.
inline LibraryPtr runtime_library(const ModelShape& s, std::uint32_t weight_types) {
    auto lib = std::make_shared<metal_src::Library>(metal_src::make_library(metal_src::kernel_config(s, weight_types)));
    if (!metal_src::entry_points_match(*lib)) throw Error("forge metal: the library's text does not declare each of its kernels once");
    return lib;
}
inline LibraryPtr runtime_library(const ModelShape& s) { return runtime_library(s, metal_src::shape_weight_types(s)); }

// The GPU forward pass for one model shape, compiled traits or read from the file.
class GpuModel final : public AnyModel {
public:
    // `shape` is the file's shape, already checked (against compiled traits, or the shape rules); `device`
    // runs `library`, whose name `compiled_name` is (empty for a runtime shape).
    GpuModel(gguf::File file, ModelOptions opt, const ModelShape& shape, LibraryPtr library, std::unique_ptr<Device> device,
             std::string_view compiled_name)
        : file_(std::move(file)), shape_(shape), lib_(std::move(library)), C(lib_->config), dev_(std::move(device)),
          compiled_name_(compiled_name), context_(resolve_context(opt.context, shape_)), batch_(std::max(1, opt.max_batch)),
          w_(load_weights(file_, shape_, context_)) {
        const ModelShape& S = shape_;
        const int kQKV = qkv_width();
        const auto B = std::size_t(batch_);
        if (file_.mapped()) dev_->map_file(file_.bytes());  // weights bound in place where the device can
        embd_ = wrap(w_.token_embd);
        out_w_ = wrap(w_.output);
        out_norm_ = wrap_f32(w_.output_norm, S.hidden);
        // The file's RoPE frequency factors, or ones (dividing by 1 leaves every angle exactly as it was).
        rope_freqs_ = dev_->new_buffer(std::size_t(S.head_dim / 2) * 4);
        auto* ff = reinterpret_cast<float*>(rope_freqs_->contents());
        if (w_.rope_freqs.empty()) std::fill_n(ff, S.head_dim / 2, 1.0f);
        else std::copy(w_.rope_freqs.begin(), w_.rope_freqs.end(), ff);
        for (const auto& L : w_.layers) {
            Layer g{wrap_f32(L.attn_norm, S.hidden), wrap(L.wq), wrap(L.wk), wrap(L.wv), wrap(L.wo),
                    wrap_f32(L.ffn_norm, S.hidden), wrap(L.w_gate), wrap(L.w_up), wrap(L.w_down), nullptr,
                    dev_->new_buffer(std::size_t(context_) * S.kv_dim() * 2), dev_->new_buffer(std::size_t(context_) * S.kv_dim() * 2),
                    nullptr, nullptr};
            if (S.qk_norm) {
                g.q_norm = wrap_f32(L.q_norm, S.head_dim);
                g.k_norm = wrap_f32(L.k_norm, S.head_dim);
            }
            if (S.qkv_bias) {
                g.bias = dev_->new_buffer(std::size_t(kQKV) * 4);
                auto* b = reinterpret_cast<float*>(g.bias->contents());
                std::copy_n(L.bq, S.q_dim(), b);
                std::copy_n(L.bk, S.kv_dim(), b + S.q_dim());
                std::copy_n(L.bv, S.kv_dim(), b + S.q_dim() + S.kv_dim());
            }
            layers_.push_back(std::move(g));
        }
        x_ = dev_->new_buffer(B * S.hidden * 4);
        xb_ = dev_->new_buffer(B * S.hidden * 4);
        qkv_ = dev_->new_buffer(B * kQKV * 4);
        att_ = dev_->new_buffer(B * S.q_dim() * 4);
        gu_ = dev_->new_buffer(B * 2 * S.ffn * 4);
        ffn_ = dev_->new_buffer(B * S.ffn * 4);
        logits_ = dev_->new_buffer(B * S.vocab * 4);
        tokens_ = dev_->new_buffer(B * 4);
        partials_ = dev_->new_buffer(flash_decode_partials(S.heads, S.head_dim) * 4);
        sampled_ = dev_->new_buffer(4);
        logprob_ = dev_->new_buffer(4);
        last_.resize(std::size_t(S.vocab));
    }


    // Temperature softmax and a categorical draw with uniform u (temperature 0: greedy) over the last
    // token's logits, on the device; same result as forge::sample_categorical on those logits, and only the
    // 8-byte pick comes back.
    bool samples_on_device() const override { return true; }
    SampledToken sample(float temperature, float u) override {
        if (!has_logits_) throw Error("sample: no logits (feed a token first)");
        const int V = shape_.vocab;
        softmax_sample(dev_->encoder(), view<float>(*logits_, last_row_ * std::size_t(V)), view<std::int32_t>(*sampled_),
                       view<float>(*logprob_), V, temperature, u);
        dev_->finish();
        const SampledToken s{*reinterpret_cast<const std::int32_t*>(sampled_->contents()), *reinterpret_cast<const float*>(logprob_->contents())};
        if (s.id < 0) {  // a logit is not finite: the host's check names it
            require_finite_logits(logits(), std::size_t(V), pos_ - 1);
            throw Error("sample: the device found a logit that is not finite");
        }
        return s;
    }

    int position() const override { return pos_; }
    // Copied from the device on the first call after a feed, and checked finite then (as a host model's
    // are when fed): a token sampled on the device costs no copy. Not safe to call from two threads.
    std::span<const float> logits() const override {
        if (!has_logits_) return {};
        if (!fetched_) {
            const auto* l = reinterpret_cast<const float*>(logits_->contents()) + last_row_ * std::size_t(shape_.vocab);
            std::copy_n(l, shape_.vocab, last_.begin());
            fetched_ = true;
            ++logits_copies_;
            require_finite_logits(last_, std::size_t(shape_.vocab), pos_ - 1);
        }
        return last_;
    }
    // How often logits() copied the last token's logits from the device (at most once per feed).
    std::size_t logits_copies() const { return logits_copies_; }
    int context() const override { return context_; }
    int threads() const override { return 1; }  // the device computes; the host thread only encodes
    std::size_t kv_cache_bytes() const override { return shape_.kv_cache_bytes(context_); }
    const ModelShape& shape() const override { return shape_; }
    const gguf::File& file() const override { return file_; }
    std::string_view compiled_name() const override { return compiled_name_; }
    std::string_view device_name() const override { return dev_->name(); }
    std::string_view kernels() const override { return "MSL"; }

private:
    std::span<const float> feed(std::span<const std::int32_t> tokens, float* all_logits, const AbortCheck& abort) override {
        feed_batches(tokens, all_logits, abort);
        return logits();
    }
    void feed_without_logits(std::span<const std::int32_t> tokens, const AbortCheck& abort) override { feed_batches(tokens, nullptr, abort); }

    // The last token's logits stay on the device (logits() fetches and checks them), so no host span is
    // handed to the batch loop's finiteness check.
    void feed_batches(std::span<const std::int32_t> tokens, float* all_logits, const AbortCheck& abort) {
        has_logits_ = false;
        prefill_in_batches(shape_, pos_, context_, batch_, tokens, all_logits, {}, abort, [&](const std::int32_t* t, int n, float* all) {
            forward(t, n, all, abort);
            has_logits_ = true;
        });
    }

    void cut(int n) override {
        require_truncatable(n, pos_);
        if (n != pos_) has_logits_ = false;
        pos_ = n;
    }

    void copy_prefix(AnyModel& other, int n) const override {
        auto* to = dynamic_cast<GpuModel*>(&other);
        if (!to) throw Error("cannot copy a prefix from a GPU model to a model on another backend");
        require_copyable_prefix(n, pos_, shape_, to->shape_, to->context_);
        const std::size_t bytes = std::size_t(n) * std::size_t(shape_.kv_dim()) * 2;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            std::memcpy(to->layers_[l].k_cache->contents(), layers_[l].k_cache->contents(), bytes);
            std::memcpy(to->layers_[l].v_cache->contents(), layers_[l].v_cache->contents(), bytes);
        }
        to->pos_ = n;
        to->has_logits_ = false;
    }

    int qkv_width() const { return shape_.q_dim() + 2 * shape_.kv_dim(); }

    // A weight matrix on the device, with the type and size the launchers need.
    struct Matrix {
        std::unique_ptr<Buffer> buffer;
        DType type = DType::F32;
        int rows = 0, cols = 0;
    };
    struct Layer {
        std::unique_ptr<Buffer> attn_norm;
        Matrix wq, wk, wv, wo;
        std::unique_ptr<Buffer> ffn_norm;
        Matrix w_gate, w_up, w_down;
        std::unique_ptr<Buffer> bias;  // q, k, v biases end to end (qkv_bias models)
        std::unique_ptr<Buffer> k_cache, v_cache;
        std::unique_ptr<Buffer> q_norm, k_norm;  // qk_norm models: head_dim weights each
    };

    Matrix wrap(const cpu::WeightView& v) {
        if (metal_src::dtype_suffix(v.type).empty())
            throw Error("the Metal path has no kernels for " + std::string(dtype_name(v.type)) + " weights (" +
                        metal_src::dtype_set_names(~std::uint32_t(0)) + "); convert the file with forge quantize");
        if (!C.holds(v.type))
            throw Error("this model's MSL library has no kernels for its " + std::string(dtype_name(v.type)) + " weights (it holds " +
                        metal_src::dtype_set_names(C.weight_types) + "); open the file without compiled traits");
        return {dev_->wrap(v.data, std::size_t(v.rows) * v.row_stride()), v.type, v.rows, v.cols};
    }
    std::unique_ptr<Buffer> wrap_f32(const float* p, int n) {
        return dev_->wrap(reinterpret_cast<const std::byte*>(p), std::size_t(n) * 4);
    }

    // y[t] = W x[t] for n tokens.
    void project(Encoder& e, const Matrix& w, View<float> x, int n, int x_stride, View<float> y, int y_stride) {
        matmul(e, C, w.type, view<std::byte>(*w.buffer), w.rows, w.cols, x, n, x_stride, y, y_stride);
    }

    // y[t] = the matrices' rows end to end times x[t]: one launch over all of them where they share a
    // type, else (a Q4_K_M file mixes types) one launch each into the same places.
    void project_stacked(Encoder& e, std::initializer_list<const Matrix*> ms, View<float> x, int n, int x_stride, View<float> y,
                         int y_stride) {
        const Matrix& first = **ms.begin();
        if (std::all_of(ms.begin(), ms.end(), [&](const Matrix* m) { return m->type == first.type; })) {
            std::array<WeightRows, kMaxStacked> parts;
            std::size_t count = 0;
            for (const Matrix* m : ms) parts.at(count++) = {view<std::byte>(*m->buffer), m->rows};
            matmul(e, C, first.type, std::span<const WeightRows>(parts.data(), count), first.cols, x, n, x_stride, y, y_stride);
            return;
        }
        std::size_t at = 0;
        for (const Matrix* m : ms) {
            project(e, *m, x, n, x_stride, y.at(at), y_stride);
            at += std::size_t(m->rows);
        }
    }

    // x += residual_scale * y, a block's output joining the residual stream, as Model::residual_add.
    void residual_add(Encoder& e, View<float> x, View<float> y, int n) {
        if (shape_.residual_scale != 1.0f) {
            scale(e, y, shape_.residual_scale, n);
            e.barrier();
        }
        add_inplace(e, x, y, n);
    }

    static constexpr int kLayersPerCommit = 8;

    // The transformer for n tokens at positions pos_ .. pos_ + n - 1, as Model::forward.
    // `abort` is asked before each layer; in a batch the device first finishes the layers encoded so far,
    // so that a long prefill stops within a layer of the request.
    void forward(const std::int32_t* tokens, int n, float* all_logits, const AbortCheck& abort) {
        const ModelShape& S = shape_;
        const int H = S.hidden, Q = S.q_dim(), KV = S.kv_dim(), F = S.ffn, kQKV = qkv_width();
        auto& e = dev_->encoder();
        std::copy_n(tokens, n, reinterpret_cast<std::int32_t*>(tokens_->contents()));
        const auto x = view<float>(*x_), xb = view<float>(*xb_), qkv = view<float>(*qkv_), att = view<float>(*att_);
        const auto gu = view<float>(*gu_), ffn = view<float>(*ffn_);

        embed(e, embd_.type, view<std::byte>(*embd_.buffer), S.vocab, H, view<std::int32_t>(*tokens_), n, x, H);
        e.barrier();
        if (S.embedding_scale != 1.0f) {
            scale(e, x, S.embedding_scale, n * H);
            e.barrier();
        }
        for (int l = 0; l < S.layers; ++l) {
            if (abort && n > 1) dev_->finish();
            check_abort(abort, pos_);
            auto& L = layers_[std::size_t(l)];
            const auto kc = view<std::uint16_t>(*L.k_cache), vc = view<std::uint16_t>(*L.v_cache);
            // Attention block.
            rms_norm(e, x, view<float>(*L.attn_norm), xb, H, n, H, H);
            e.barrier();
            project_stacked(e, {&L.wq, &L.wk, &L.wv}, xb, n, H, qkv, kQKV);
            e.barrier();
            if (S.qkv_bias) {
                add_bias(e, qkv, view<float>(*L.bias), kQKV, n, kQKV);
                e.barrier();
            }
            if (S.qk_norm) {
                rms_norm_heads(e, qkv, view<float>(*L.q_norm), S.head_dim, S.heads, n, kQKV);
                rms_norm_heads(e, qkv.at(std::size_t(Q)), view<float>(*L.k_norm), S.head_dim, S.kv_heads, n, kQKV);
                e.barrier();
            }
            if (S.has_rope(l)) {
                rope(e, C, qkv, view<float>(*rope_freqs_), n, S.heads, S.kv_heads, S.head_dim, kQKV, Q, pos_, w_.rope_mscale);
                e.barrier();
            }
            kv_append(e, qkv, kc, vc, n, KV, kQKV, Q, Q + KV, pos_, context_);
            e.barrier();
            if (n == 1)
                flash_decode(e, C, qkv, kc, vc, view<float>(*partials_), att, S.heads, S.kv_heads, S.head_dim, pos_,
                             S.sliding_window, context_);
            else
                flash_prefill(e, C, qkv, kc, vc, att, n, S.heads, S.kv_heads, S.head_dim, kQKV, Q, pos_, S.sliding_window, context_);
            e.barrier();
            project(e, L.wo, att, n, Q, xb, H);
            e.barrier();
            residual_add(e, x, xb, n * H);
            e.barrier();
            // Feed-forward block (SwiGLU), gate and up side by side in one row.
            rms_norm(e, x, view<float>(*L.ffn_norm), xb, H, n, H, H);
            e.barrier();
            project_stacked(e, {&L.w_gate, &L.w_up}, xb, n, H, gu, 2 * F);
            e.barrier();
            silu_mul(e, gu, ffn, F, n, 2 * F, F, F);
            e.barrier();
            project(e, L.w_down, ffn, n, F, xb, H);
            e.barrier();
            residual_add(e, x, xb, n * H);
            // The device starts on the first layer, and then takes every few more, while the host encodes
            // the rest (a commit is also a barrier).
            if (l % kLayersPerCommit == 0) dev_->commit();
            else e.barrier();
        }
        // Final norm and LM head: every token's logits when asked, else only the last one's.
        const int first = all_logits ? 0 : n - 1;
        rms_norm(e, x.at(std::size_t(first) * H), view<float>(*out_norm_), xb, H, n - first, H, H);
        e.barrier();
        project(e, out_w_, xb, n - first, H, view<float>(*logits_), S.vocab);
        if (S.logit_scale != 1.0f) {
            e.barrier();
            scale(e, view<float>(*logits_), 1.0f / S.logit_scale, (n - first) * S.vocab);
        }
        dev_->finish();

        last_row_ = std::size_t(n - 1 - first);
        fetched_ = false;
        if (all_logits) std::copy_n(reinterpret_cast<const float*>(logits_->contents()), std::size_t(n) * S.vocab, all_logits);
        pos_ += n;
    }

    gguf::File file_;
    ModelShape shape_;
    LibraryPtr lib_;  // before dev_: the device refers to its kernels
    const KernelConfig& C;
    std::unique_ptr<Device> dev_;
    std::string compiled_name_;
    int context_, batch_;
    ModelWeights w_;
    int pos_ = 0;
    bool has_logits_ = false;
    std::size_t last_row_ = 0;  // row of logits_ holding the last token's logits
    mutable bool fetched_ = false;  // last_ holds them
    mutable std::size_t logits_copies_ = 0;
    Matrix embd_, out_w_;
    std::unique_ptr<Buffer> out_norm_, rope_freqs_;
    std::vector<Layer> layers_;
    std::unique_ptr<Buffer> x_, xb_, qkv_, att_, gu_, ffn_, logits_, tokens_, partials_, sampled_, logprob_;
    mutable std::vector<float> last_;
};

}  // namespace forge::metal
