#pragma once
// Temperature softmax + categorical draw: the CPU twin of the GPU softmax_sample kernel. Given the same
// logits, temperature and uniform value u in [0, 1), both return the same token and log-probability:
// the first index whose running probability sum exceeds u (the last index with non-zero probability
// if rounding leaves the total below u). Each logit's distance from the largest is divided by the
// temperature, never the logits themselves: a logit times 1/temperature is rounded by half a unit in
// its last place, hundreds at temperature 1e-9, which comes out as factors of e^hundreds in
// probability; (l - max) / t is exact at the top (0) and underflows to probability 0 elsewhere.
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "forge/core/error.hpp"

namespace forge {

struct SampledToken {
    std::int32_t id;
    float logprob;  // log of the sampled token's probability under softmax(logits / temperature)
};

inline SampledToken sample_categorical(std::span<const float> logits, float temperature, float u) {
    if (logits.empty()) throw Error("sample: no logits");
    if (!(temperature > 0.0f)) throw Error("sample: temperature must be > 0, got " + std::to_string(temperature));
    if (!(u >= 0.0f && u < 1.0f)) throw Error("sample: random value must be in [0, 1), got " + std::to_string(u));
    float max = -INFINITY;
    for (const float l : logits) max = std::fmax(max, l);
    if (!(max > -INFINITY && max < INFINITY)) throw Error("sample: no finite logit to sample from");
    float sum = 0.0f;
    for (const float l : logits) sum += std::exp((l - max) / temperature);
    const float inv_sum = 1.0f / sum;
    float cdf = 0.0f;
    std::int32_t last_nonzero = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const float p = std::exp((logits[i] - max) / temperature) * inv_sum;
        if (p > 0.0f) last_nonzero = std::int32_t(i);
        cdf += p;
        if (cdf > u && p > 0.0f) return {std::int32_t(i), std::log(p)};
    }
    return {last_nonzero, (logits[std::size_t(last_nonzero)] - max) / temperature - std::log(sum)};
}

}  // namespace forge
