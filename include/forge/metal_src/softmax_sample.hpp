#pragma once
// softmax_sample: temperature softmax + categorical draw on the device; only the token id and its
// log-probability leave it. Same arithmetic, in the same order, as forge::sample_categorical (its CPU
// twin): the max is a parallel reduction (exact in any order), the exponentials are computed in
// parallel into `probs`, and thread 0 sums them and scans the CDF sequentially, so both pick the first
// index whose running probability exceeds u.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_SOFTMAX_SAMPLE_FIELDS(F) F(uint, n) F(float, temperature) F(float, u)
FORGE_MSL_PARAMS(SoftmaxSampleParams, FORGE_SOFTMAX_SAMPLE_FIELDS);

inline constexpr KernelSource kSoftmaxSample{
    .name = "softmax_sample",
    .params = SoftmaxSampleParams::msl_name,
    .buffers = {{{"const float", "logits"}, {"float", "probs"}, {"int", "out_token"}, {"float", "out_logprob"}}},
    .n_buffers = 4,
    .threadgroup_memory = true,
    .builtins = kNtg | kTid | kLane | kSg,
    .body = R"msl({
    const float t = p.temperature;
    float m = -INFINITY;
    for (uint i = tid; i < p.n; i += ntg.x) m = fmax(m, logits[i]);
    m = tg_reduce_max(m, tgm, lane, sg, ntg.x);
    for (uint i = tid; i < p.n; i += ntg.x) probs[i] = exp((logits[i] - m) / t);
    threadgroup_barrier(mem_flags::mem_device);
    if (tid == 0) {
        float sum = 0.0f;
        for (uint i = 0; i < p.n; ++i) sum += probs[i];
        const float inv_sum = 1.0f / sum;
        float cdf = 0.0f;
        uint last_nonzero = 0;
        bool found = false;
        for (uint i = 0; i < p.n && !found; ++i) {
            const float pi = probs[i] * inv_sum;
            if (pi > 0.0f) last_nonzero = i;
            cdf += pi;
            if (cdf > p.u && pi > 0.0f) {
                out_token[0] = int(i);
                out_logprob[0] = log(pi);
                found = true;
            }
        }
        if (!found) {
            out_token[0] = int(last_nonzero);
            out_logprob[0] = (logits[last_nonzero] - m) / t - log(sum);
        }
    }
}
)msl"};

}  // namespace forge::metal_src
