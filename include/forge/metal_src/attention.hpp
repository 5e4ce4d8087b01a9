#pragma once
// Attention over the f16 KV cache with grouped-query heads (query head h reads KV head
// h / (n_heads / n_kv_heads)). Cache position P lives in row P % capacity, so a cache smaller than the
// sequence works as a ring buffer under a sliding window.
//   attention:     one query, one threadgroup per head; all scores in threadgroup memory, two-pass
//                  softmax. CPU twin: cpu::attend_head.
//   flash_prefill: causal batched prefill, one threadgroup per (head, token); keys streamed FA_TILE at a
//                  time with the online-softmax recurrence, so threadgroup memory does not grow with the
//                  context. Sliding-window mask. CPU twin: cpu::attend_head per token.
//   flash_decode + flash_reduce: split-K decode. Each threadgroup of flash_decode attends one chunk of
//                  the window and writes (o, m, l) partials; flash_reduce merges a head's partials.
//                  Sliding-window mask and ring-buffer rows. CPU twin: cpu::attend_head.
#include "forge/metal_src/kernel.hpp"

namespace forge::metal_src {

#define FORGE_ATTENTION_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, first) F(uint, last) F(uint, capacity)
FORGE_MSL_PARAMS(AttentionParams, FORGE_ATTENTION_FIELDS);

#define FORGE_FLASH_PREFILL_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, q_stride) F(uint, out_stride) F(uint, pos0) F(uint, window) F(uint, capacity)
FORGE_MSL_PARAMS(FlashPrefillParams, FORGE_FLASH_PREFILL_FIELDS);

#define FORGE_FLASH_DECODE_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, pos) F(uint, window) F(uint, capacity) F(uint, chunk) F(uint, n_splits)
FORGE_MSL_PARAMS(FlashDecodeParams, FORGE_FLASH_DECODE_FIELDS);

#define FORGE_FLASH_REDUCE_FIELDS(F) F(uint, n_heads) F(uint, n_splits)
FORGE_MSL_PARAMS(FlashReduceParams, FORGE_FLASH_REDUCE_FIELDS);

// Threadgroup floats of `attention`: a reduction scratch, then one score per attended position.
constexpr int attention_threadgroup_floats(int n_positions) { return 32 + n_positions; }
inline constexpr int kFlashThreadgroupFloats = 32;  // one tile of scores (FA_TILE)
// Floats per (head, split) partial of flash_decode: the unnormalised output, then m and l.
constexpr int flash_partial_floats(int head_dim) { return head_dim + 2; }

inline constexpr std::string_view kAttentionHelpers = R"msl(// First position a query at `pos` attends: window 0 is full attention.
inline uint window_start(uint pos, uint window) { return (window > 0 && pos + 1 > window) ? pos + 1 - window : 0; }

// Online-softmax attention of one query over cache positions [begin, end), FA_TILE keys per step. Every
// thread carries the running max m and denominator l; thread tid owns output dims tid + k * FA_THREADS.
// q·k reads 4 dims per load, the keys as half4 (a key row starts at a multiple of HEAD_DIM halves, a
// multiple of 4) and the query as float4 (the launchers check it is 16-byte aligned), and sums in float:
// the seed's half loads, without half products that would cost the scores their precision.
inline void flash_attend(DPTR(const float) qh, DPTR(const half) kc, DPTR(const half) vc, uint kv_col, uint kv_dim,
                         uint begin, uint end, uint capacity, TPTR(float) s_tile, uint tid, uint lane, uint sg,
                         thread float& m, thread float& l, thread float* o) {
    DPTR(const float4) q4 = DCAST(const float4, qh);
    const float scale = KQ_SCALE != 0.0f ? KQ_SCALE : 1.0f / sqrt(float(HEAD_DIM));
    for (uint t0 = begin; t0 < end; t0 += FA_TILE) {
        const uint tn = min(FA_TILE, end - t0);
        for (uint j = sg; j < tn; j += FA_THREADS / 32) {
            DPTR(const half4) kj = DCAST(const half4, kc + ((t0 + j) % capacity) * kv_dim + kv_col);
            float d = 0.0f;
            for (uint i = lane; i < HEAD_DIM / 4; i += 32) d += dot(q4[i], float4(kj[i]));
            d = simd_sum(d);
            if (lane == 0) s_tile[j] = d * scale;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        float m_new = m;
        for (uint j = 0; j < tn; ++j) m_new = max(m_new, s_tile[j]);
        const float alpha = exp(m - m_new);
        l *= alpha;
        for (uint k = 0; k < FA_DPT; ++k) o[k] *= alpha;
        for (uint j = 0; j < tn; ++j) {
            const float pj = exp(s_tile[j] - m_new);
            l += pj;
            DPTR(const half) vj = vc + ((t0 + j) % capacity) * kv_dim + kv_col;
            for (uint k = 0; k < FA_DPT; ++k) {
                const uint i = tid + k * FA_THREADS;
                if (i < HEAD_DIM) o[k] += pj * float(vj[i]);
            }
        }
        m = m_new;
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
}

)msl";

inline constexpr KernelSource kAttention{
    .name = "attention",
    .params = AttentionParams::msl_name,
    .buffers = {{{"const float", "q"}, {"const half", "k_cache"}, {"const half", "v_cache"}, {"float", "out"}}},
    .n_buffers = 4,
    .threadgroup_memory = true,
    .builtins = kTgpig | kNtg | kTid | kLane | kSg,
    .body = R"msl({
    const uint h = tgpig.x;
    const uint kv_dim = p.n_kv_heads * HEAD_DIM;
    const uint kv_col = (h / (p.n_heads / p.n_kv_heads)) * HEAD_DIM;
    const uint n = p.last - p.first + 1;
    TPTR(float) scores = tgm + 32;
    DPTR(const float) qh = q + h * HEAD_DIM;
    const float scale = KQ_SCALE != 0.0f ? KQ_SCALE : 1.0f / sqrt(float(HEAD_DIM));
    for (uint j = sg; j < n; j += ntg.x / 32) {
        DPTR(const half) kj = k_cache + ((p.first + j) % p.capacity) * kv_dim + kv_col;
        float d = 0.0f;
        for (uint i = lane; i < HEAD_DIM; i += 32) d += qh[i] * float(kj[i]);
        d = simd_sum(d);
        if (lane == 0) scores[j] = d * scale;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float m = -INFINITY;
    for (uint j = tid; j < n; j += ntg.x) m = max(m, scores[j]);
    m = tg_reduce_max(m, tgm, lane, sg, ntg.x);
    float s = 0.0f;
    for (uint j = tid; j < n; j += ntg.x) {
        const float e = exp(scores[j] - m);
        scores[j] = e;
        s += e;
    }
    s = tg_reduce_sum(s, tgm, lane, sg, ntg.x);
    const float inv = 1.0f / s;
    for (uint i = tid; i < HEAD_DIM; i += ntg.x) {
        float acc = 0.0f;
        for (uint j = 0; j < n; ++j) acc += scores[j] * float(v_cache[((p.first + j) % p.capacity) * kv_dim + kv_col + i]);
        out[h * HEAD_DIM + i] = acc * inv;
    }
}
)msl"};

inline constexpr KernelSource kFlashPrefill{
    .name = "flash_prefill",
    .params = FlashPrefillParams::msl_name,
    .buffers = {{{"const float", "q"}, {"const half", "k_cache"}, {"const half", "v_cache"}, {"float", "out"}}},
    .n_buffers = 4,
    .threadgroup_memory = true,
    .builtins = kTgpig | kTid | kLane | kSg,
    .body = R"msl({
    const uint h = tgpig.x;
    const uint t = tgpig.y;
    const uint pos = p.pos0 + t;
    float m = -INFINITY;
    float l = 0.0f;
    float o[FA_DPT];
    for (uint k = 0; k < FA_DPT; ++k) o[k] = 0.0f;
    flash_attend(q + t * p.q_stride + h * HEAD_DIM, k_cache, v_cache, (h / (p.n_heads / p.n_kv_heads)) * HEAD_DIM,
                 p.n_kv_heads * HEAD_DIM, window_start(pos, p.window), pos + 1, p.capacity, tgm, tid, lane, sg, m, l, o);
    const float inv = 1.0f / l;
    for (uint k = 0; k < FA_DPT; ++k) {
        const uint i = tid + k * FA_THREADS;
        if (i < HEAD_DIM) out[t * p.out_stride + h * HEAD_DIM + i] = o[k] * inv;
    }
}
)msl"};

inline constexpr KernelSource kFlashDecode{
    .name = "flash_decode",
    .params = FlashDecodeParams::msl_name,
    .buffers = {{{"const float", "q"}, {"const half", "k_cache"}, {"const half", "v_cache"}, {"float", "partials"}}},
    .n_buffers = 4,
    .threadgroup_memory = true,
    .builtins = kTgpig | kTid | kLane | kSg,
    .body = R"msl({
    const uint h = tgpig.x;
    const uint split = tgpig.y;
    const uint begin = window_start(p.pos, p.window) + split * p.chunk;
    const uint end = min(p.pos + 1, begin + p.chunk);
    float m = -INFINITY;
    float l = 0.0f;
    float o[FA_DPT];
    for (uint k = 0; k < FA_DPT; ++k) o[k] = 0.0f;
    flash_attend(q + h * HEAD_DIM, k_cache, v_cache, (h / (p.n_heads / p.n_kv_heads)) * HEAD_DIM,
                 p.n_kv_heads * HEAD_DIM, begin, end, p.capacity, tgm, tid, lane, sg, m, l, o);
    DPTR(float) part = partials + (h * p.n_splits + split) * (HEAD_DIM + 2);
    for (uint k = 0; k < FA_DPT; ++k) {
        const uint i = tid + k * FA_THREADS;
        if (i < HEAD_DIM) part[i] = o[k];
    }
    if (tid == 0) {
        part[HEAD_DIM] = m;
        part[HEAD_DIM + 1] = l;
    }
}
)msl"};

inline constexpr KernelSource kFlashReduce{
    .name = "flash_reduce",
    .params = FlashReduceParams::msl_name,
    .buffers = {{{"const float", "partials"}, {"float", "out"}}},
    .n_buffers = 2,
    .builtins = kTgpig | kNtg | kTid,
    .body = R"msl({
    const uint h = tgpig.x;
    DPTR(const float) part = partials + h * p.n_splits * (HEAD_DIM + 2);
    float m = -INFINITY;
    for (uint s = 0; s < p.n_splits; ++s) m = max(m, part[s * (HEAD_DIM + 2) + HEAD_DIM]);
    float l = 0.0f;
    for (uint s = 0; s < p.n_splits; ++s)
        l += part[s * (HEAD_DIM + 2) + HEAD_DIM + 1] * exp(part[s * (HEAD_DIM + 2) + HEAD_DIM] - m);
    for (uint i = tid; i < HEAD_DIM; i += ntg.x) {
        float acc = 0.0f;
        for (uint s = 0; s < p.n_splits; ++s)
            acc += part[s * (HEAD_DIM + 2) + i] * exp(part[s * (HEAD_DIM + 2) + HEAD_DIM] - m);
        out[h * HEAD_DIM + i] = acc / l;
    }
}
)msl"};

}  // namespace forge::metal_src
