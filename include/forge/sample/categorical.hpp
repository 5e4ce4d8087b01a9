#pragma once
// Temperature softmax + categorical draw: the CPU twin of the GPU softmax_sample kernel. Given the same
// logits, temperature and uniform value u in [0, 1), both return the same token and log-probability:
// the first index whose running probability sum exceeds u (the last index with non-zero probability
// if rounding leaves the total below u); temperature 0 is greedy (the first index of the largest logit).
// Each logit's distance from the largest is divided by the temperature, never the logits themselves: a
// logit times 1/temperature is rounded by half a unit in its last place, hundreds at temperature 1e-9,
// which comes out as factors of e^hundreds in probability; (l - max) / t is exact at the top (0) and
// underflows to probability 0 elsewhere.
//
// Float sums depend on their order, so the order is part of the definition, one the device can follow in
// parallel: the vocabulary is cut into kSampleSegments consecutive segments of ceil(n / kSampleSegments)
// logits (one per device thread), each segment's exponentials are summed in index order, and the segment
// sums in segment order. The draw compares u x total with the running total of the segment sums, then,
// inside the segment where it first exceeds it, with that segment's start plus its own running sum.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "forge/core/error.hpp"

namespace forge {

// Segments of the sums (the device's threads: at most 1024 and a multiple of 32 on every Apple GPU).
inline constexpr std::size_t kSampleSegments = 1024;

struct SampledToken {
    std::int32_t id;
    // log of the token's probability under the model's own distribution, softmax(logits) at temperature
    // 1, whatever the temperature of the draw: what generation reports
    float logprob;
};

namespace detail {

// Each segment's sum of exp((l - max) / temperature) into `sums`; returns their sum in segment order.
inline float segment_exp_sums(std::span<const float> logits, float max, float temperature,
                              std::array<float, kSampleSegments>& sums) {
    const std::size_t n = logits.size(), len = (n + kSampleSegments - 1) / kSampleSegments;
    float total = 0.0f;
    for (std::size_t s = 0; s < kSampleSegments; ++s) {
        float sum = 0.0f;
        for (std::size_t i = s * len; i < std::min(n, (s + 1) * len); ++i) sum += std::exp((logits[i] - max) / temperature);
        sums[s] = sum;
        total += sum;
    }
    return total;
}

}  // namespace detail

// max + log(sum of exp(l - max)), summed in the segment order: logits[i] minus it is token i's
// log-probability at temperature 1.
inline float log_normaliser(std::span<const float> logits, float max) {
    std::array<float, kSampleSegments> sums;
    return max + std::log(detail::segment_exp_sums(logits, max, 1.0f, sums));
}

namespace detail {

// The index sample_categorical draws, with the largest logit and the sum at the draw's temperature (0
// when greedy) from which its log-probability follows.
struct Draw {
    std::size_t index;
    float max, sum;
};

inline Draw draw(std::span<const float> logits, float temperature, float u) {
    if (logits.empty()) throw Error("sample: no logits");
    if (!(temperature >= 0.0f)) throw Error("sample: temperature must be >= 0, got " + std::to_string(temperature));
    if (!(u >= 0.0f && u < 1.0f)) throw Error("sample: random value must be in [0, 1), got " + std::to_string(u));
    float max = -INFINITY;
    for (const float l : logits) max = std::fmax(max, l);
    if (!(max > -INFINITY && max < INFINITY)) throw Error("sample: no finite logit to sample from");
    if (temperature == 0.0f) {
        std::size_t i = 0;
        while (logits[i] != max) ++i;
        return {i, max, 0.0f};
    }
    const std::size_t n = logits.size(), len = (n + kSampleSegments - 1) / kSampleSegments;
    std::array<float, kSampleSegments> sums;
    const float sum = segment_exp_sums(logits, max, temperature, sums);
    const float target = u * sum;
    float before = 0.0f;
    for (std::size_t s = 0; s < kSampleSegments; ++s) {
        const float after = before + sums[s];
        if (after > target) {
            // The segment's last step gives `after` again, so an index is found here.
            float run = 0.0f;
            for (std::size_t i = s * len;; ++i) {
                run += std::exp((logits[i] - max) / temperature);
                if (before + run > target) return {i, max, sum};
            }
        }
        before = after;
    }
    std::size_t last = n - 1;
    while (last > 0 && std::exp((logits[last] - max) / temperature) == 0.0f) --last;
    return {last, max, sum};
}

}  // namespace detail

// The token sample_categorical draws, without its log-probability (which costs another pass over the
// logits at a temperature other than 1).
inline std::int32_t categorical_index(std::span<const float> logits, float temperature, float u) {
    return std::int32_t(detail::draw(logits, temperature, u).index);
}

inline SampledToken sample_categorical(std::span<const float> logits, float temperature, float u) {
    const detail::Draw d = detail::draw(logits, temperature, u);
    const float log_norm = temperature == 1.0f ? d.max + std::log(d.sum) : log_normaliser(logits, d.max);
    return {std::int32_t(d.index), logits[d.index] - log_norm};
}

}  // namespace forge
