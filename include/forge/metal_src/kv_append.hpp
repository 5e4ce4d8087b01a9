#pragma once
// kv_append: rounds the batch's K and V rows (f32, inside the fused QKV rows) to f16 and stores them at
// cache rows (pos0 + t) % capacity, K and V in one dispatch (thread ids past n_tokens * kv_dim write V).
// CPU twin: KVCache::store.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_KV_APPEND_FIELDS(F) F(uint, n_tokens) F(uint, kv_dim) F(uint, src_stride) F(uint, k_offset) F(uint, v_offset) F(uint, pos0) F(uint, capacity)
FORGE_MSL_PARAMS(KvAppendParams, FORGE_KV_APPEND_FIELDS);

inline constexpr KernelSource kKvAppend{
    .name = "kv_append",
    .params = KvAppendParams::msl_name,
    .buffers = {{{"const float", "src"}, {"half", "k_cache"}, {"half", "v_cache"}}},
    .n_buffers = 3,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint per = p.n_tokens * p.kv_dim;
    const uint gid = tgpig.x * ntg.x + tid;
    if (gid >= 2 * per) return;
    const bool is_v = gid >= per;
    const uint e = is_v ? gid - per : gid;
    const uint t = e / p.kv_dim;
    const uint i = e % p.kv_dim;
    const uint dst = ((p.pos0 + t) % p.capacity) * p.kv_dim + i;
    const float v = src[t * p.src_stride + (is_v ? p.v_offset : p.k_offset) + i];
    if (is_v) v_cache[dst] = half(v);
    else k_cache[dst] = half(v);
}
)msl"};

}  // namespace forge::metal_src
