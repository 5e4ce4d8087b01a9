#pragma once
// rms_norm: y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one threadgroup per row; decode is one row,
// prefill a row per token. Rows come in groups of `group`, `group_stride` floats apart, rows of a group
// x_stride (y_stride) apart: the heads of q or k inside each token's QKV row, normalised in place
// (qwen3). One group of every row is the plain case. CPU twin: cpu::rmsnorm.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_RMS_NORM_FIELDS(F) F(uint, n) F(uint, x_stride) F(uint, y_stride) F(uint, group) F(uint, group_stride)
FORGE_MSL_PARAMS(RmsNormParams, FORGE_RMS_NORM_FIELDS);

inline constexpr KernelSource kRmsNorm{
    .name = "rms_norm",
    .params = RmsNormParams::msl_name,
    .buffers = {{{"const float", "x"}, {"const float", "w"}, {"float", "y"}}},
    .n_buffers = 3,
    .threadgroup_memory = true,
    .builtins = kTgpig | kNtg | kTid | kLane | kSg,
    .body = R"msl({
    const uint g = tgpig.x / p.group, r = tgpig.x % p.group;
    DPTR(const float) xr = x + g * p.group_stride + r * p.x_stride;
    DPTR(float) yr = y + g * p.group_stride + r * p.y_stride;
    float ss = 0.0f;
    for (uint i = tid; i < p.n; i += ntg.x) ss += xr[i] * xr[i];
    ss = tg_reduce_sum(ss, tgm, lane, sg, ntg.x);
    const float scale = 1.0f / sqrt(ss / float(p.n) + RMS_EPS);
    for (uint i = tid; i < p.n; i += ntg.x) yr[i] = xr[i] * scale * w[i];
}
)msl"};

}  // namespace forge::metal_src
