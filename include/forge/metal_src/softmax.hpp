#pragma once
// softmax: numerically stable softmax of one row in place, one threadgroup, threadgroup reductions.
// CPU twin: cpu::softmax.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_SOFTMAX_FIELDS(F) F(uint, n)
FORGE_MSL_PARAMS(SoftmaxParams, FORGE_SOFTMAX_FIELDS);

inline constexpr KernelSource kSoftmax{
    .name = "softmax",
    .params = SoftmaxParams::msl_name,
    .buffers = {{{"float", "x"}}},
    .n_buffers = 1,
    .threadgroup_memory = true,
    .builtins = kNtg | kTid | kLane | kSg,
    .body = R"msl({
    float m = -INFINITY;
    for (uint i = tid; i < p.n; i += ntg.x) m = max(m, x[i]);
    m = tg_reduce_max(m, tgm, lane, sg, ntg.x);
    float s = 0.0f;
    for (uint i = tid; i < p.n; i += ntg.x) {
        const float e = exp(x[i] - m);
        x[i] = e;
        s += e;
    }
    s = tg_reduce_sum(s, tgm, lane, sg, ntg.x);
    const float inv = 1.0f / s;
    for (uint i = tid; i < p.n; i += ntg.x) x[i] *= inv;
}
)msl"};

}  // namespace forge::metal_src
