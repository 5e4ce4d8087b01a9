#pragma once
// rms_norm: y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one threadgroup per row; decode is one row,
// prefill a row per token. CPU twin: cpu::rmsnorm.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_RMS_NORM_FIELDS(F) F(uint, n) F(uint, x_stride) F(uint, y_stride)
FORGE_MSL_PARAMS(RmsNormParams, FORGE_RMS_NORM_FIELDS);

inline constexpr KernelSource kRmsNorm{
    .name = "rms_norm",
    .params = RmsNormParams::msl_name,
    .buffers = {{{"const float", "x"}, {"const float", "w"}, {"float", "y"}}},
    .n_buffers = 3,
    .threadgroup_memory = true,
    .builtins = kTgpig | kNtg | kTid | kLane | kSg,
    .body = R"msl({
    DPTR(const float) xr = x + tgpig.x * p.x_stride;
    DPTR(float) yr = y + tgpig.x * p.y_stride;
    float ss = 0.0f;
    for (uint i = tid; i < p.n; i += ntg.x) ss += xr[i] * xr[i];
    ss = tg_reduce_sum(ss, tgm, lane, sg, ntg.x);
    const float scale = 1.0f / sqrt(ss / float(p.n) + RMS_EPS);
    for (uint i = tid; i < p.n; i += ntg.x) yr[i] = xr[i] * scale * w[i];
}
)msl"};

}  // namespace forge::metal_src
