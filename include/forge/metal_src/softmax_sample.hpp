#pragma once
// softmax_sample: temperature softmax + categorical draw (temperature 0: greedy) on the device; only the
// token id and its log-probability at temperature 1 leave it. Same arithmetic, in the same order, as
// forge::sample_categorical (its CPU twin, which defines the order): one thread per segment of
// ceil(n / threads) logits sums its exponentials in index order; thread 0 turns the segment sums into
// running totals (segment order) while thread 1 sums the temperature-1 ones; the one thread whose
// segment takes the running total past u x total scans its segment again for the pick. The max is a
// reduction, exact in any order. A logit that is not finite (exponent bits all ones: read from the bits,
// so fast math cannot fold the test away) makes the token -1, for the host to report.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_SOFTMAX_SAMPLE_FIELDS(F) F(uint, n) F(float, temperature) F(float, u)
FORGE_MSL_PARAMS(SoftmaxSampleParams, FORGE_SOFTMAX_SAMPLE_FIELDS);

// Threadgroup floats: the running totals and the temperature-1 sums (one per thread each), then 32 of
// reduction scratch.
constexpr std::size_t softmax_sample_threadgroup_floats(std::size_t threads) { return 2 * threads + 32; }

inline constexpr KernelSource kSoftmaxSample{
    .name = "softmax_sample",
    .params = SoftmaxSampleParams::msl_name,
    .buffers = {{{"const float", "logits"}, {"int", "out_token"}, {"float", "out_logprob"}}},
    .n_buffers = 3,
    .threadgroup_memory = true,
    .builtins = kNtg | kTid | kLane | kSg,
    .body = R"msl({
    const uint nt = ntg.x, len = (p.n + nt - 1) / nt;
    const uint first = min(tid * len, p.n), end = min(first + len, p.n);
    const float t = p.temperature;
    TPTR(float) totals = tgm;        // this segment's sum, then the running total to its end
    TPTR(float) sums1 = tgm + nt;    // this segment's sum at temperature 1; later the candidates
    TPTR(float) scratch = tgm + 2 * nt;
    TPTR(uint) candidates = TCAST(uint, sums1);
    float m = -INFINITY, bad = 0.0f;
    for (uint i = first; i < end; ++i) {
        const float l = logits[i];
        m = fmax(m, l);
        if ((as_type<uint>(l) & 0x7f800000u) == 0x7f800000u) bad = 1.0f;
    }
    m = tg_reduce_max(m, scratch, lane, sg, nt);
    bad = tg_reduce_max(bad, scratch, lane, sg, nt);
    if (bad != 0.0f) {
        if (tid == 0) {
            out_token[0] = -1;
            out_logprob[0] = 0.0f;
        }
        return;
    }
    float s = 0.0f, s1 = 0.0f;
    for (uint i = first; i < end; ++i) {
        const float e1 = exp(logits[i] - m);
        s1 += e1;
        if (t != 0.0f) s += t == 1.0f ? e1 : exp((logits[i] - m) / t);
    }
    totals[tid] = s;
    sums1[tid] = s1;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        float run = 0.0f;
        for (uint i = 0; i < nt; ++i) {
            run += totals[i];
            totals[i] = run;
        }
    } else if (tid == 1) {
        float sum1 = 0.0f;
        for (uint i = 0; i < nt; ++i) sum1 += sums1[i];
        scratch[0] = m + log(sum1);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    const float log_norm = scratch[0];
    const float target = p.u * totals[nt - 1];
    if (t != 0.0f && totals[nt - 1] > target) {
        const float before = tid == 0 ? 0.0f : totals[tid - 1];
        if (before <= target && totals[tid] > target) {
            float run = 0.0f;
            for (uint i = first; i < end; ++i) {
                run += exp((logits[i] - m) / t);
                if (before + run > target) {
                    out_token[0] = int(i);
                    out_logprob[0] = logits[i] - log_norm;
                    break;
                }
            }
        }
        return;
    }
    // Greedy: the first index of the max. Else rounding left the total at or below u x total: the last
    // index of non-zero probability (p.n + 1 - i, so that the smallest wins again).
    uint c = 0xffffffffu;
    if (t == 0.0f) {
        for (uint i = first; i < end && c == 0xffffffffu; ++i)
            if (logits[i] == m) c = i;
    } else {
        for (uint i = end; i > first && c == 0xffffffffu; --i)
            if (exp((logits[i - 1] - m) / t) > 0.0f) c = p.n - (i - 1);
    }
    c = simd_min(c);
    if (lane == 0) candidates[sg] = c;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        for (uint i = 1; i < nt / 32; ++i) c = min(c, uint(candidates[i]));
        const uint at = t == 0.0f ? c : p.n - c;
        out_token[0] = int(at);
        out_logprob[0] = logits[at] - log_norm;
    }
}
)msl"};

}  // namespace forge::metal_src
