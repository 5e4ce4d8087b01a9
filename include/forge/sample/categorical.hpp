#pragma once
// Temperature softmax + categorical draw: the CPU twin of the GPU softmax_sample kernel. Given the same
// logits, temperature and uniform value u in [0, 1), both return the same token and log-probability:
// the first index whose running probability sum exceeds u (the last index with non-zero probability
// if rounding leaves the total below u).
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
    const float inv_t = 1.0f / temperature;
    float max = -INFINITY;
    for (const float l : logits) max = std::fmax(max, l * inv_t);
    float sum = 0.0f;
    for (const float l : logits) sum += std::exp(l * inv_t - max);
    const float inv_sum = 1.0f / sum;
    float cdf = 0.0f;
    std::int32_t last_nonzero = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const float p = std::exp(logits[i] * inv_t - max) * inv_sum;
        if (p > 0.0f) last_nonzero = std::int32_t(i);
        cdf += p;
        if (cdf > u && p > 0.0f) return {std::int32_t(i), std::log(p)};
    }
    return {last_nonzero, logits[std::size_t(last_nonzero)] * inv_t - max - std::log(sum)};
}

}  // namespace forge
