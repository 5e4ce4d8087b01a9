#pragma once
// Token sampling as llama.cpp users know it: repetition penalty, then greedy (temperature 0) or
// top-k -> top-p -> min-p -> temperature -> categorical draw. Seeded: the same seed, logits and history
// give the same tokens on every platform (the generator and the float draw are spelled out, not left to
// the standard library's implementation-defined distributions).
//
// The defaults sample from the model's own distribution (temperature 1, no filter), as the OpenAI API
// and Hugging Face do; each filter is on only when its field is set, and without a seed every sampler
// draws its own (seed() says which, to repeat a run).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "forge/sample/categorical.hpp"

namespace forge {

// Temperatures below this sample greedily: the distribution is then the argmax for any logits that
// differ by more than 1e-4, and nothing is gained by computing it.
inline constexpr float kGreedyBelowTemperature = 1e-5f;
// A logit divided by the repeat penalty must stay finite: logits are at most a few thousand.
inline constexpr float kMinRepeatPenalty = 1e-3f, kMaxRepeatPenalty = 1e3f;

struct SamplerParams {
    float temperature = 1.0f;  // 0 (or below kGreedyBelowTemperature): greedy
    int top_k = 0;             // 0: off
    float top_p = 1.0f;        // 1: off
    float min_p = 0.0f;        // 0: off
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    std::optional<std::uint64_t> seed{};  // none: a random seed
};

class Sampler {
public:
    explicit Sampler(SamplerParams p) : p_(p), seed_(p.seed.value_or(random_seed())), rng_(seed_) { check(p); }

    // Throws forge::Error naming the first parameter out of its range.
    static void check(const SamplerParams& p) {
        if (!(p.temperature >= 0.0f)) throw Error("temperature must be >= 0");
        if (p.top_k < 0) throw Error("top_k must be >= 0");
        if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw Error("top_p must be in (0, 1]");
        if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) throw Error("min_p must be in [0, 1)");
        if (!(p.repeat_penalty >= kMinRepeatPenalty && p.repeat_penalty <= kMaxRepeatPenalty))
            throw Error("repeat_penalty must be between 0.001 and 1000");
    }

    const SamplerParams& params() const { return p_; }
    // The seed drawing the tokens: the one given, or the random one chosen.
    std::uint64_t seed() const { return seed_; }

    // A uniform float in [0, 1) from the top 24 bits of the generator: exact and portable.
    float next_uniform() { return float(rng_() >> 40) * 0x1p-24f; }

    // Remembers a token for the repetition penalty (the prompt's too, as llama.cpp does).
    void accept(std::int32_t token) {
        if (p_.repeat_last_n <= 0) return;
        history_.push_back(token);
        if (history_.size() > std::size_t(p_.repeat_last_n)) history_.pop_front();
    }

    // Whether sample() is exactly sample_categorical over the logits as given: no filter, no penalty.
    bool plain() const { return !filtered() && p_.repeat_penalty == 1.0f; }
    // For a plain() sampler, the temperature (0: greedy) and uniform value sample() would hand
    // sample_categorical, advancing the generator as it would: a draw made where the logits are (on a
    // device) picks the token sample() would have.
    std::pair<float, float> plain_draw() {
        if (!plain()) throw Error("sampling: a draw with filters or penalties needs the logits on the host");
        if (p_.temperature < kGreedyBelowTemperature) return {0.0f, 0.0f};
        return {p_.temperature, next_uniform()};
    }

    std::int32_t sample(std::span<const float> logits) {
        work_.assign(logits.begin(), logits.end());
        if (p_.repeat_penalty != 1.0f)
            for (const auto t : history_) {
                float& l = work_[std::size_t(t)];
                l = l > 0.0f ? l / p_.repeat_penalty : l * p_.repeat_penalty;
            }
        if (p_.temperature < kGreedyBelowTemperature)
            return std::int32_t(std::max_element(work_.begin(), work_.end()) - work_.begin());
        if (filtered()) filter();
        return categorical_index(work_, p_.temperature, next_uniform());
    }

private:
    bool filtered() const { return p_.top_k != 0 || p_.top_p != 1.0f || p_.min_p != 0.0f; }

    // Masks (to -inf) every logit outside the top-k / top-p / min-p candidates.
    void filter() {
        const std::size_t n = work_.size();
        order_.resize(n);
        std::iota(order_.begin(), order_.end(), 0);
        const std::size_t k = p_.top_k > 0 ? std::min(n, std::size_t(p_.top_k)) : n;
        std::partial_sort(order_.begin(), order_.begin() + std::ptrdiff_t(k), order_.end(),
                          [&](std::int32_t a, std::int32_t b) { return work_[std::size_t(a)] > work_[std::size_t(b)]; });
        // Probabilities of the top-k candidates (at temperature 1, as llama.cpp's top-p/min-p see them).
        const float max = work_[std::size_t(order_[0])];
        float sum = 0.0f;
        for (std::size_t i = 0; i < k; ++i) sum += std::exp(work_[std::size_t(order_[i])] - max);
        std::size_t keep = k;
        float cum = 0.0f;
        for (std::size_t i = 0; i < k; ++i) {
            const float p = std::exp(work_[std::size_t(order_[i])] - max) / sum;
            if (i > 0 && p < p_.min_p * (1.0f / sum)) {  // below min_p x the top token's probability
                keep = i;
                break;
            }
            cum += p;
            if (p_.top_p < 1.0f && cum >= p_.top_p) {  // at 1 (off) a sum rounded to 1 cuts no tail
                keep = i + 1;
                break;
            }
        }
        for (std::size_t i = keep; i < n; ++i) work_[std::size_t(order_[i])] = -INFINITY;
    }

    static std::uint64_t random_seed() {
        std::random_device rd;
        return (std::uint64_t(rd()) << 32) ^ rd();
    }

    SamplerParams p_;
    std::uint64_t seed_;
    std::mt19937_64 rng_;
    std::deque<std::int32_t> history_;
    std::vector<float> work_;
    std::vector<std::int32_t> order_;
};

}  // namespace forge
