#pragma once
// A model of any traits on any backend behind one interface, so programs, tools and servers can hold
// whichever model a file needs. This header has no kernels in it: see model_adapter.hpp for the CPU
// implementation, metal/model.hpp for the GPU one, and open_model.hpp for choosing one.
//
// A model is one sequence: its KV cache holds the tokens fed since reset(), and tokens() says which.
// truncate() keeps a prefix, copy_prefix_to() gives a prefix to another model of the same kind and
// shape, so a conversation (or a prompt shared by requests) is not computed again. Where the backend
// allows, new_sequence() adds sequences over the same weights and feed_together() feeds several in
// shared passes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/model/options.hpp"
#include "forge/model/prefill.hpp"
#include "forge/sample/categorical.hpp"
#include "forge/traits/model_shape.hpp"
#include "forge/traits/model_traits.hpp"

namespace forge {

class AnyModel {
public:
    virtual ~AnyModel() = default;

    // Feeds `tokens` at the next positions and returns the last one's logits (valid until the model is
    // next fed). With `all_logits` (tokens.size() x vocab floats) every token's logits are written there.
    // `abort` is asked between batches and layers; when it says stop, Cancelled is thrown and the model
    // keeps the batches it finished (tokens() says which).
    std::span<const float> prefill(std::span<const std::int32_t> tokens, float* all_logits = nullptr, const AbortCheck& abort = {}) {
        std::span<const float> logits;
        recorded(tokens, [&] { logits = feed(tokens, all_logits, abort); });
        return logits;
    }
    // Feeds as prefill() does but returns no logits: a model that samples on its device (sample()) then
    // leaves them there, and a token costs no copy of the vocabulary's logits. logits() still gives them.
    void advance(std::span<const std::int32_t> tokens, const AbortCheck& abort = {}) {
        recorded(tokens, [&] { feed_without_logits(tokens, abort); });
    }
    std::span<const float> decode(std::int32_t token, const AbortCheck& abort = {}) { return prefill(std::span(&token, 1), nullptr, abort); }

    // The tokens the KV cache holds, position by position.
    std::span<const std::int32_t> tokens() const { return tokens_; }
    // The last fed token's logits; empty after truncate() dropped that token, or before anything was fed.
    virtual std::span<const float> logits() const = 0;

    // Whether sample() draws where the logits are computed, without copying them.
    virtual bool samples_on_device() const { return false; }
    // sample_categorical(logits(), temperature, u) (temperature 0: greedy), computed on the device.
    virtual SampledToken sample(float /*temperature*/, float /*u*/) { throw Error("this model does not sample on its device"); }

    // Keeps the first n positions; the next token fed goes to position n.
    void truncate(int n) {
        cut(n);
        tokens_.resize(std::size_t(n));
    }
    void reset() { truncate(0); }
    // How many of `tokens`, from the first, the sequence holds.
    std::size_t common_prefix(std::span<const std::int32_t> tokens) const {
        return std::size_t(std::mismatch(tokens_.begin(), tokens_.end(), tokens.begin(), tokens.end()).first - tokens_.begin());
    }
    // Truncates the sequence to its longest common prefix with `tokens`, short of the last token (whose
    // logits only feeding gives). Returns how many positions were kept: tokens that need no feeding again.
    int keep_prefix_of(std::span<const std::int32_t> tokens) {
        const int n = int(std::min(common_prefix(tokens), tokens.empty() ? 0 : tokens.size() - 1));
        truncate(n);
        return n;
    }
    // Gives `to` (a model on the same backend with the same shape) this model's first n positions: `to`
    // then holds them and continues at position n.
    void copy_prefix_to(AnyModel& to, int n) const {
        copy_prefix(to, n);
        to.tokens_.assign(tokens_.begin(), tokens_.begin() + n);
    }

    // Whether new_sequence() works: the CPU path; the GPU path holds one sequence per model.
    virtual bool has_sequences() const { return false; }
    // Another sequence over this model's weights and threads, with an empty KV cache of its own, whose
    // feeds can share passes with this one's (feed_together).
    virtual std::unique_ptr<AnyModel> new_sequence() const {
        throw Error("the " + std::string(device_name()) + " backend holds one sequence per model: open another model instead");
    }

    // One sequence's tokens for feed_together.
    struct Feed {
        AnyModel* model;
        std::span<const std::int32_t> tokens;
    };
    // Feeds each model its tokens. Sequences of one model (new_sequence) share passes over the weights:
    // N sequences decoding a token each read the weights once. Other models are fed one after another.
    // Afterwards each model's logits() are its last token's; on Cancelled (`abort` as in prefill) or an
    // error, each model keeps what was fed to it (tokens() says what).
    static void feed_together(std::span<const Feed> feeds, const AbortCheck& abort = {}) {
        if (feeds.empty()) return;
        std::vector<std::size_t> before;
        for (const Feed& f : feeds) before.push_back(f.model->tokens_.size());
        const auto record = [&] {
            for (std::size_t i = 0; i < feeds.size(); ++i) feeds[i].model->record_fed(feeds[i].tokens, before[i]);
        };
        try {
            feeds.front().model->feed_sequences(feeds, abort);
        } catch (...) {
            record();
            throw;
        }
        record();
    }

    virtual int position() const = 0;
    virtual int context() const = 0;
    virtual int threads() const = 0;
    virtual std::size_t kv_cache_bytes() const = 0;
    virtual const ModelShape& shape() const = 0;
    virtual const gguf::File& file() const = 0;
    // The compiled traits' name, or empty on the runtime-shape path.
    virtual std::string_view compiled_name() const = 0;
    // On the CPU: whether every matmul runs kernels unrolled for its row length (compiled traits, or a
    // runtime shape whose lengths the program registered).
    virtual bool row_length_kernels() const { return false; }
    // What computes the model: "cpu", or the GPU device's name.
    virtual std::string_view device_name() const { return "cpu"; }
    // The kernels computing it: on the CPU the kernel set chosen when it loaded (portable, avx2,
    // avx512-vnni...: cpu/dispatch/select.hpp), on a GPU "MSL".
    virtual std::string_view kernels() const = 0;

protected:
    // What prefill, truncate and copy_prefix_to ask of an implementation; the token bookkeeping is here.
    virtual std::span<const float> feed(std::span<const std::int32_t> tokens, float* all_logits, const AbortCheck& abort) = 0;
    // feed() for a caller that does not want the span: a model whose logits stay on its device until
    // asked for overrides it to leave them there.
    virtual void feed_without_logits(std::span<const std::int32_t> tokens, const AbortCheck& abort) { feed(tokens, nullptr, abort); }
    // feed_together's work: models that can share passes override it; here each is fed in turn.
    virtual void feed_sequences(std::span<const Feed> feeds, const AbortCheck& abort) {
        for (const Feed& f : feeds) f.model->feed(f.tokens, nullptr, abort);
    }
    virtual void cut(int n) = 0;
    virtual void copy_prefix(AnyModel& to, int n) const = 0;

private:
    // Runs the feed `run` and records the tokens it fed, also those of the finished batches when it throws.
    template <class Run>
    void recorded(std::span<const std::int32_t> tokens, Run&& run) {
        const std::size_t before = tokens_.size();
        try {
            run();
        } catch (...) {
            record_fed(tokens, before);
            throw;
        }
        record_fed(tokens, before);
    }

    // Appends to tokens() what a feed of `tokens`, begun when the sequence held `before`, fed: all of
    // them, or after a throw those its finished batches hold (position() says how far it got).
    void record_fed(std::span<const std::int32_t> tokens, std::size_t before) {
        tokens_.insert(tokens_.end(), tokens.begin(), tokens.begin() + std::ptrdiff_t(std::size_t(position()) - before));
    }

    std::vector<std::int32_t> tokens_;
};

// Defined in model_adapter.hpp; instantiated where a program opens a CPU model of those traits.
template <class Traits>
std::unique_ptr<AnyModel> make_model(gguf::File file, ModelOptions opt);
// The same for the GPU path (metal or metal-emu): defined in open_model.hpp.
template <class Traits>
std::unique_ptr<AnyModel> make_gpu_model(gguf::File file, ModelOptions opt);

}  // namespace forge

// In one translation unit, FORGE_INSTANTIATE_MODEL(T) compiles the CPU model of traits T (or
// forge::Dynamic); FORGE_EXTERN_MODEL(T) in the others keeps them from compiling it again.
#define FORGE_INSTANTIATE_MODEL(...) \
    template std::unique_ptr<forge::AnyModel> forge::make_model<__VA_ARGS__>(forge::gguf::File, forge::ModelOptions)
#define FORGE_EXTERN_MODEL(...) \
    extern template std::unique_ptr<forge::AnyModel> forge::make_model<__VA_ARGS__>(forge::gguf::File, forge::ModelOptions)
// The same pair for the GPU forward pass and its MSL text; FORGE_INSTANTIATE_GPU_MODEL needs
// forge/model/open_model.hpp.
#define FORGE_INSTANTIATE_GPU_MODEL(...) \
    template std::unique_ptr<forge::AnyModel> forge::make_gpu_model<__VA_ARGS__>(forge::gguf::File, forge::ModelOptions)
#define FORGE_EXTERN_GPU_MODEL(...) \
    extern template std::unique_ptr<forge::AnyModel> forge::make_gpu_model<__VA_ARGS__>(forge::gguf::File, forge::ModelOptions)
