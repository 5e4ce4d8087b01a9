#pragma once
// One thread per element:
//   silu_mul: out[t][i] = silu(gu[t][i]) * gu[t][up_offset + i], gate and up read from one row (the fused
//             gate+up projection output). CPU twin: cpu::silu_mul.
//   add:      out[i] = a[i] + b[i]; add-in-place binds `out` to the same buffer as `a` (each element is
//             read before it is written by the same thread). CPU twin: cpu::add_inplace.
//   add_bias: x[t][i] += bias[i] for every token row (the QKV bias). CPU twin: cpu::add_inplace.
//   scale:    x[i] *= factor, a model's multiplier (granite's embedding, residual and logit scales).
//             CPU twin: cpu::scale_inplace.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_SILU_MUL_FIELDS(F) F(uint, n) F(uint, n_tokens) F(uint, in_stride) F(uint, up_offset) F(uint, out_stride)
FORGE_MSL_PARAMS(SiluMulParams, FORGE_SILU_MUL_FIELDS);

#define FORGE_ADD_FIELDS(F) F(uint, n)
FORGE_MSL_PARAMS(AddParams, FORGE_ADD_FIELDS);

#define FORGE_SCALE_FIELDS(F) F(uint, n) F(float, factor)
FORGE_MSL_PARAMS(ScaleParams, FORGE_SCALE_FIELDS);

#define FORGE_ADD_BIAS_FIELDS(F) F(uint, n) F(uint, n_tokens) F(uint, stride)
FORGE_MSL_PARAMS(AddBiasParams, FORGE_ADD_BIAS_FIELDS);

inline constexpr KernelSource kSiluMul{
    .name = "silu_mul",
    .params = SiluMulParams::msl_name,
    .buffers = {{{"const float", "gu"}, {"float", "out"}}},
    .n_buffers = 2,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n * p.n_tokens) return;
    const uint t = gid / p.n;
    const uint i = gid % p.n;
    const float g = gu[t * p.in_stride + i];
    out[t * p.out_stride + i] = g / (1.0f + exp(-g)) * gu[t * p.in_stride + p.up_offset + i];
}
)msl"};

inline constexpr KernelSource kAdd{
    .name = "add",
    .params = AddParams::msl_name,
    .buffers = {{{"const float", "a"}, {"const float", "b"}, {"float", "out"}}},
    .n_buffers = 3,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n) return;
    out[gid] = a[gid] + b[gid];
}
)msl"};

inline constexpr KernelSource kScale{
    .name = "scale",
    .params = ScaleParams::msl_name,
    .buffers = {{{"float", "x"}}},
    .n_buffers = 1,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n) return;
    x[gid] *= p.factor;
}
)msl"};

inline constexpr KernelSource kAddBias{
    .name = "add_bias",
    .params = AddBiasParams::msl_name,
    .buffers = {{{"float", "x"}, {"const float", "bias"}}},
    .n_buffers = 2,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n * p.n_tokens) return;
    const uint i = gid % p.n;
    x[(gid / p.n) * p.stride + i] += bias[i];
}
)msl"};

}  // namespace forge::metal_src
