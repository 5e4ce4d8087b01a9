#pragma once
// rope: rotary position embedding in place, one thread per (token, head, pair). One kernel serves the
// single vector (one token, no K heads), the batch, and the fused Q+K case (K heads at k_offset in the
// same row); the pairing (adjacent or NeoX halves) and the base are baked from the traits. The frequency
// factors (HEAD_DIM/2 values dividing each pair's angle: llama3 RoPE scaling, the file's rope_freqs tensor)
// are a buffer, all ones for a model without them, which leaves the angles exactly as they were; cos and
// sin are multiplied by `mscale` (LongRoPE's attention factor, 1 for other models).
// CPU twin: cpu::rope.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_ROPE_FIELDS(F) F(uint, n_tokens) F(uint, n_q_heads) F(uint, n_k_heads) F(uint, stride) F(uint, k_offset) F(uint, pos0) F(float, mscale)
FORGE_MSL_PARAMS(RopeParams, FORGE_ROPE_FIELDS);

inline constexpr KernelSource kRope{
    .name = "rope",
    .params = RopeParams::msl_name,
    .buffers = {{{"float", "x"}, {"const float", "freq_factors"}}},
    .n_buffers = 2,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint half_dim = HEAD_DIM / 2;
    const uint heads = p.n_q_heads + p.n_k_heads;
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= p.n_tokens * heads * half_dim) return;
    const uint tok = gid / (heads * half_dim);
    const uint h = (gid / half_dim) % heads;
    const uint i = gid % half_dim;
    const uint base = tok * p.stride + (h < p.n_q_heads ? h * HEAD_DIM : p.k_offset + (h - p.n_q_heads) * HEAD_DIM);
    const float theta = float(p.pos0 + tok) * pow(ROPE_BASE, -2.0f * float(i) / float(HEAD_DIM)) / freq_factors[i];
    const float c = cos(theta) * p.mscale;
    const float s = sin(theta) * p.mscale;
    const uint a = base + (ROPE_NEOX ? i : 2 * i);
    const uint b = base + (ROPE_NEOX ? i + half_dim : 2 * i + 1);
    const float x0 = x[a];
    const float x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
)msl"};

}  // namespace forge::metal_src
