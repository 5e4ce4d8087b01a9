#pragma once
// Attention over the f16 KV cache with grouped-query heads (query head h reads KV head
// h / (n_heads / n_kv_heads)). Cache position P lives in row P % capacity, so a cache smaller than the
// sequence works as a ring buffer under a sliding window.
//   attention:     one query, one threadgroup per head; all scores in threadgroup memory, two-pass
//                  softmax. CPU twin: cpu::attend_head.
//   flash_prefill: causal batched prefill with simdgroup matrices, one threadgroup per (head, block of
//                  FA_QUERIES = 8 tokens), the seed's shape: the block's Q is loaded once as half, keys and
//                  values stream through one FA_TILE x FA_DIM half tile (exact copies of the f16 cache), and
//                  per tile S = Q K^T and O += P V run as 8x8 half products into float accumulators, with a
//                  scale + causal + sliding-window mask and the online softmax per query row in between;
//                  O stays in threadgroup memory as float. FA_DIM is HEAD_DIM rounded up to 8, the tiles
//                  zero-padded, so every head_dim forge takes works (256 needs 29.5 KiB).
//                  Q and the softmax weights P are rounded to half: both operands of a product share the
//                  half tiles' type (the emulator and CUDA executors take one operand type, and float K/V
//                  tiles would not fit 32 KiB at head_dim 256). The denominator sums the rounded weights,
//                  so the output is a weighted mean, every weight within 2^-11 of its exact value.
//                  CPU twin: cpu::attend_head per token over Q rounded to half; P's rounding bounds the
//                  difference by 2^-10 of the values' largest magnitude.
//   flash_decode + flash_reduce: split-K decode. Each threadgroup of flash_decode attends one chunk of
//                  the window and writes (o, m, l) partials; flash_reduce merges a head's partials.
//                  Sliding-window mask and ring-buffer rows. CPU twin: cpu::attend_head.
#include "forge/metal_src/constexpr_string.hpp"
#include "forge/metal_src/kernel.hpp"
#include "forge/metal_src/prelude.hpp"

namespace forge::metal_src {

#define FORGE_ATTENTION_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, first) F(uint, last) F(uint, capacity)
FORGE_MSL_PARAMS(AttentionParams, FORGE_ATTENTION_FIELDS);

#define FORGE_FLASH_PREFILL_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, n_tokens) F(uint, q_stride) F(uint, out_stride) F(uint, pos0) F(uint, window) F(uint, capacity)
FORGE_MSL_PARAMS(FlashPrefillParams, FORGE_FLASH_PREFILL_FIELDS);

#define FORGE_FLASH_DECODE_FIELDS(F) F(uint, n_heads) F(uint, n_kv_heads) F(uint, pos) F(uint, window) F(uint, capacity) F(uint, chunk) F(uint, n_splits)
FORGE_MSL_PARAMS(FlashDecodeParams, FORGE_FLASH_DECODE_FIELDS);

#define FORGE_FLASH_REDUCE_FIELDS(F) F(uint, n_heads) F(uint, n_splits)
FORGE_MSL_PARAMS(FlashReduceParams, FORGE_FLASH_REDUCE_FIELDS);

// Threadgroup floats of `attention`: a reduction scratch, then one score per attended position.
constexpr int attention_threadgroup_floats(int n_positions) { return 32 + n_positions; }
inline constexpr int kFlashThreadgroupFloats = 32;  // one tile of scores (FA_TILE)

// flash_prefill's block: FA_QUERIES query rows, each simdgroup scoring 8 of the tile's keys and owning
// FA_ROWS rows in the softmax; the text below spells the same numbers.
inline constexpr int kFlashQueries = 8;
static_assert(KernelConfig::kFlashTile == 4 * 8 && KernelConfig::kFlashThreads == 4 * kSimdWidth,
              "flash_prefill: 4 simdgroups, each scoring 8 keys of a tile");
// Threadgroup floats of flash_prefill: O (float), S (float), P, Q and the K/V tile (half; K and V take
// turns in one tile, which is what keeps head_dim 256 within 32 KiB).
constexpr int flash_prefill_threadgroup_floats(int head_dim) {
    const int dim = (head_dim + 7) / 8 * 8;
    const int halves = kFlashQueries * KernelConfig::kFlashTile + kFlashQueries * dim + KernelConfig::kFlashTile * dim;
    return kFlashQueries * dim + kFlashQueries * KernelConfig::kFlashTile + halves / 2;
}
static_assert(flash_prefill_threadgroup_floats(256) * 4 <= kThreadgroupMemoryLimit,
              "flash_prefill: the largest head_dim's tiles must fit in 32 KiB of threadgroup memory");
// Floats per (head, split) partial of flash_decode: the unnormalised output, then m and l.
constexpr int flash_partial_floats(int head_dim) { return head_dim + 2; }

inline constexpr std::string_view kAttentionHelpers = R"msl(// First position a query at `pos` attends: window 0 is full attention.
inline uint window_start(uint pos, uint window) { return (window > 0 && pos + 1 > window) ? pos + 1 - window : 0; }

// flash_prefill's block (attention.hpp's kFlashQueries), head width padded for 8x8 tiles, and query rows
// per simdgroup in its softmax.
constant constexpr uint FA_QUERIES = 8;
constant constexpr uint FA_DIM = (HEAD_DIM + 7) / 8 * 8;
constant constexpr uint FA_ROWS = FA_QUERIES / (FA_THREADS / 32);

// Cache positions [k0, k0 + kn) of one KV head into a FA_TILE x FA_DIM half tile, four halves per load
// (HEAD_DIM is a multiple of 4); rows past kn and dims past HEAD_DIM are zero, so they add nothing to
// a product.
inline void flash_load_tile(TPTR(half) tile, DPTR(const half) cache, uint k0, uint kn, uint capacity, uint kv_dim,
                            uint kv_col, uint tid) {
    TPTR(half4) tile4 = TCAST(half4, tile);
    for (uint i = tid; i < FA_TILE * FA_DIM / 4; i += FA_THREADS) {
        const uint j = i / (FA_DIM / 4), d = i % (FA_DIM / 4) * 4;
        tile4[i] = j < kn && d < HEAD_DIM ? *DCAST(const half4, cache + ((k0 + j) % capacity) * kv_dim + kv_col + d)
                                          : half4(0.0f);
    }
}

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

static_assert(text_find(kAttentionHelpers, concat<48>("constant constexpr uint FA_QUERIES = ", format_int(kFlashQueries), ";").view()) !=
                  std::string_view::npos,
              "flash_prefill: the text's FA_QUERIES must be kFlashQueries");

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
    const uint t0 = tgpig.y * FA_QUERIES;
    const uint nq = min(FA_QUERIES, p.n_tokens - t0);
    const uint kv_dim = p.n_kv_heads * HEAD_DIM;
    const uint kv_col = (h / (p.n_heads / p.n_kv_heads)) * HEAD_DIM;
    const float scale = KQ_SCALE != 0.0f ? KQ_SCALE : 1.0f / sqrt(float(HEAD_DIM));
    TPTR(float) o = tgm;                              // FA_QUERIES x FA_DIM
    TPTR(float) s = o + FA_QUERIES * FA_DIM;          // FA_QUERIES x FA_TILE
    TPTR(half) ph = TCAST(half, s + FA_QUERIES * FA_TILE);  // FA_QUERIES x FA_TILE
    TPTR(half) qh = ph + FA_QUERIES * FA_TILE;        // FA_QUERIES x FA_DIM
    TPTR(half) kv = qh + FA_QUERIES * FA_DIM;         // FA_TILE x FA_DIM: K, then V
    for (uint i = tid; i < FA_QUERIES * FA_DIM / 4; i += FA_THREADS) {
        const uint r = i / (FA_DIM / 4), d = i % (FA_DIM / 4) * 4;
        TCAST(half4, qh)[i] = r < nq && d < HEAD_DIM ? half4(*DCAST(const float4, q + (t0 + r) * p.q_stride + h * HEAD_DIM + d))
                                                     : half4(0.0f);
        TCAST(float4, o)[i] = float4(0.0f);
    }
    // Running max and denominator of the rows this simdgroup's softmax owns (sg + i * 4), held alike by
    // every lane.
    float m[FA_ROWS];
    float l[FA_ROWS];
    for (uint i = 0; i < FA_ROWS; ++i) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    const uint pos_first = p.pos0 + t0;
    const uint end = pos_first + nq;
    for (uint k0 = window_start(pos_first, p.window); k0 < end; k0 += FA_TILE) {
        const uint kn = min(FA_TILE, end - k0);
        flash_load_tile(kv, k_cache, k0, kn, p.capacity, kv_dim, kv_col, tid);
        threadgroup_barrier(mem_flags::mem_threadgroup);
        // S[:, 8 sg .. 8 sg + 8) = Q K^T over the block's rows.
        simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
        for (uint d = 0; d < FA_DIM; d += 8) {
            simdgroup_half8x8 a;
            simdgroup_half8x8 b;
            simdgroup_load(a, qh + d, FA_DIM);
            simdgroup_load(b, kv + sg * 8 * FA_DIM + d, FA_DIM, ulong2(0, 0), true);
            simdgroup_multiply_accumulate(acc, a, b, acc);
        }
        simdgroup_store(acc, s + sg * 8, FA_TILE);
        threadgroup_barrier(mem_flags::mem_threadgroup);
        flash_load_tile(kv, v_cache, k0, kn, p.capacity, kv_dim, kv_col, tid);
        // Online softmax, lane = key: a key counts for a row when it is in the tile, not after the row's
        // position and not before its window. P is rounded to half here, and l sums what P V will use.
        for (uint i = 0; i < FA_ROWS; ++i) {
            const uint r = sg + i * (FA_THREADS / 32);
            const uint pos = pos_first + r, key = k0 + lane;
            const bool valid = r < nq && lane < kn && key <= pos && key >= window_start(pos, p.window);
            const float x = valid ? s[r * FA_TILE + lane] * scale : -INFINITY;
            const float m_new = max(m[i], simd_max(x));
            const half pj = valid ? half(exp(x - m_new)) : half(0.0f);
            ph[r * FA_TILE + lane] = pj;
            // l is 0 until the row has seen a key (the largest then weighs 1); O is zero as long, and m may
            // still be -INFINITY, where m - m_new would be NaN.
            const float alpha = l[i] > 0.0f ? exp(m[i] - m_new) : 1.0f;
            l[i] = l[i] * alpha + simd_sum(float(pj));
            m[i] = m_new;
            for (uint d = lane; d < FA_DIM; d += 32) o[r * FA_DIM + d] *= alpha;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        // O[:, d .. d + 8) += P V, simdgroup sg taking every fourth 8-wide column block.
        for (uint d = sg * 8; d < FA_DIM; d += 8 * (FA_THREADS / 32)) {
            simdgroup_float8x8 od;
            simdgroup_load(od, o + d, FA_DIM);
            for (uint k = 0; k < FA_TILE; k += 8) {
                simdgroup_half8x8 a;
                simdgroup_half8x8 b;
                simdgroup_load(a, ph + k, FA_TILE);
                simdgroup_load(b, kv + k * FA_DIM + d, FA_DIM);
                simdgroup_multiply_accumulate(od, a, b, od);
            }
            simdgroup_store(od, o + d, FA_DIM);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    // The loop's last barrier made every simdgroup's O columns visible; each writes its own rows.
    for (uint i = 0; i < FA_ROWS; ++i) {
        const uint r = sg + i * (FA_THREADS / 32);
        if (r >= nq) continue;
        for (uint d = lane; d < HEAD_DIM; d += 32) out[(t0 + r) * p.out_stride + h * HEAD_DIM + d] = o[r * FA_DIM + d] / l[i];
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
