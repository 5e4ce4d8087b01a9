#pragma once
// Typed launchers: one function per kernel of metal_src/. Each checks its arguments before anything is
// encoded (sizes, buffer capacities, head counts, the head_dim and weight type the library was built
// for, sampling parameters) and throws forge::Error naming the kernel and the problem; then it computes
// the grid, threadgroup size and threadgroup memory and encodes the launch.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "forge/core/error.hpp"
#include "forge/metal/device.hpp"
#include "forge/metal_src/library.hpp"
#include "forge/sample/categorical.hpp"

namespace forge::metal {

using metal_src::KernelConfig;

// Prefill switches quantized projections from per-token mat-vec to the simdgroup-matrix GEMM at this
// many tokens.
inline constexpr int kGemmMinTokens = 8;
// flash_decode splits a query's window over at most this many threadgroups per head (llama.cpp's vector
// flash attention runs 32 workgroups per head): a short context still spreads over the GPU's cores.
inline constexpr int kFlashMaxSplits = 32;

namespace detail {

inline void check(bool ok, std::string_view kernel, const std::string& what) {
    if (!ok) throw Error(std::string(kernel) + ": " + what);
}

template <class T>
void check_capacity(const View<T>& v, std::size_t needed, std::string_view kernel, std::string_view name) {
    check(v.buffer != nullptr, kernel, "buffer '" + std::string(name) + "' is missing");
    check(v.count() >= needed, kernel,
          "buffer '" + std::string(name) + "' holds " + std::to_string(v.count()) + " elements, " + std::to_string(needed) +
              " needed");
}

inline std::uint32_t u32(std::size_t v, std::string_view kernel, std::string_view what) {
    check(v <= std::numeric_limits<std::uint32_t>::max(), kernel, std::string(what) + " does not fit in 32 bits");
    return std::uint32_t(v);
}

inline std::uint32_t ceil_div(std::size_t n, std::size_t d) { return std::uint32_t((n + d - 1) / d); }

// Metal wants threadgroup memory lengths in multiples of 16 bytes.
inline std::size_t tg_bytes(std::size_t floats) { return (floats * 4 + 15) / 16 * 16; }

struct Bind {
    Buffer* buffer;
    std::size_t byte_offset;
};
template <class T>
Bind bind(const View<T>& v) {
    return {v.buffer, v.byte_offset()};
}

template <class P>
void encode(Encoder& e, std::string_view kernel, std::initializer_list<Bind> buffers, const P& params,
            std::size_t threadgroup_bytes, Size3 groups, Size3 threads) {
    check(threadgroup_bytes <= std::size_t(metal_src::kThreadgroupMemoryLimit), kernel,
          "needs " + std::to_string(threadgroup_bytes) + " bytes of threadgroup memory, over the 32 KiB limit");
    e.set_kernel(kernel);
    std::uint32_t i = 0;
    for (const auto& b : buffers) e.set_buffer(i++, *b.buffer, b.byte_offset);
    e.set_bytes(i, &params, sizeof params);
    if (threadgroup_bytes) e.set_threadgroup_memory(threadgroup_bytes);
    e.dispatch(groups, threads);
}

inline void check_heads(std::string_view kernel, const KernelConfig& c, int n_heads, int n_kv_heads, int head_dim) {
    check(n_heads > 0 && n_kv_heads > 0, kernel, "head counts must be positive");
    check(n_heads % n_kv_heads == 0, kernel,
          "heads (" + std::to_string(n_heads) + ") must be a multiple of kv_heads (" + std::to_string(n_kv_heads) + ")");
    check(head_dim == c.head_dim, kernel,
          "head_dim " + std::to_string(head_dim) + " is not the " + std::to_string(c.head_dim) + " this library was built for");
}

inline int first_position(int pos, int window) { return window > 0 && pos + 1 > window ? pos + 1 - window : 0; }

// The flash kernels read each query head as float4s.
inline void check_query_alignment(std::string_view kernel, const View<float>& q, int q_stride) {
    check(reinterpret_cast<std::uintptr_t>(q.host()) % 16 == 0 && q_stride % 4 == 0, kernel,
          "q must start 16-byte aligned, rows a multiple of 4 floats apart");
}

}  // namespace detail

inline void rms_norm(Encoder& e, View<float> x, View<float> w, View<float> y, int n, int rows, int x_stride, int y_stride) {
    constexpr std::string_view k = "rms_norm";
    detail::check(n > 0 && rows > 0, k, "n and rows must be positive");
    detail::check(x_stride >= n && y_stride >= n, k, "row strides must be at least n");
    detail::check_capacity(x, std::size_t(rows - 1) * x_stride + n, k, "x");
    detail::check_capacity(w, std::size_t(n), k, "w");
    detail::check_capacity(y, std::size_t(rows - 1) * y_stride + n, k, "y");
    const metal_src::RmsNormParams p{std::uint32_t(n), std::uint32_t(x_stride), std::uint32_t(y_stride), std::uint32_t(rows), 0};
    detail::encode(e, k, {detail::bind(x), detail::bind(w), detail::bind(y)}, p, detail::tg_bytes(KernelConfig::kReduceScratch),
                   {std::uint32_t(rows)}, {256});
}

// RMSNorm in place of each of `heads` heads (head_dim floats, consecutive) in n_tokens rows of `stride`
// floats: q or k inside the QKV rows (qwen3).
inline void rms_norm_heads(Encoder& e, View<float> x, View<float> w, int head_dim, int heads, int n_tokens, int stride) {
    constexpr std::string_view k = "rms_norm";
    detail::check(head_dim > 0 && heads > 0 && n_tokens > 0, k, "head_dim, heads and tokens must be positive");
    detail::check(stride >= heads * head_dim, k, "the heads do not fit in rows of " + std::to_string(stride) + " floats");
    detail::check_capacity(x, std::size_t(n_tokens - 1) * stride + std::size_t(heads) * head_dim, k, "x");
    detail::check_capacity(w, std::size_t(head_dim), k, "w");
    const metal_src::RmsNormParams p{std::uint32_t(head_dim), std::uint32_t(head_dim), std::uint32_t(head_dim),
                                     std::uint32_t(heads), std::uint32_t(stride)};
    detail::encode(e, k, {detail::bind(x), detail::bind(w), detail::bind(x)}, p, detail::tg_bytes(KernelConfig::kReduceScratch),
                   {std::uint32_t(heads * n_tokens)}, {256});
}

// One matrix of a product: its weights and row count. A product takes up to three of one type and
// width stacked (Q, K and V; gate and up), computing them in one launch into consecutive rows of Y.
struct WeightRows {
    View<std::byte> w;
    int rows = 0;
};
inline constexpr std::size_t kMaxStacked = 3;

namespace detail {

// What matvec and gemm bind for stacked matrices: the total rows, where the second and third begin, the
// row's bytes, and the three weight bindings (a missing matrix repeats the one before; its rows are
// never reached).
struct Stacked {
    std::uint32_t rows, split1, split2, row_bytes;
    std::array<Bind, kMaxStacked> w;
};

// The checks matvec and gemm share: one to three matrices, whole blocks per row, sizes and capacities.
inline Stacked check_product(std::string_view k, DType type, std::span<const WeightRows> parts, int cols, View<float> x,
                             int n_tokens, int x_stride, View<float> y, int y_stride) {
    check(!parts.empty() && parts.size() <= kMaxStacked, k,
          "takes 1 to " + std::to_string(kMaxStacked) + " stacked matrices, got " + std::to_string(parts.size()));
    check(cols > 0 && n_tokens > 0, k, "rows, cols and tokens must be positive");
    const std::uint32_t block = dtype_info(type).block_elems;
    check(cols % block == 0, k, std::string(dtype_name(type)) + " rows need a multiple of " + std::to_string(block) + " columns");
    const std::size_t rb = row_bytes(type, std::size_t(cols));
    std::size_t rows = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        check(parts[i].rows > 0, k, "rows, cols and tokens must be positive");
        constexpr std::string_view kNames[kMaxStacked] = {"w0", "w1", "w2"};
        check_capacity(parts[i].w, std::size_t(parts[i].rows) * rb, k, kNames[i]);
        rows += std::size_t(parts[i].rows);
    }
    check(x_stride >= cols && std::size_t(y_stride) >= rows, k, "row strides too small");
    check_capacity(x, std::size_t(n_tokens - 1) * x_stride + cols, k, "x");
    check_capacity(y, std::size_t(n_tokens - 1) * y_stride + rows, k, "y");
    const std::uint32_t split1 = std::uint32_t(parts[0].rows);
    const std::uint32_t split2 = split1 + (parts.size() > 1 ? std::uint32_t(parts[1].rows) : 0);
    const Bind w0 = bind(parts[0].w);
    const Bind w1 = parts.size() > 1 ? bind(parts[1].w) : w0;
    const Bind w2 = parts.size() > 2 ? bind(parts[2].w) : w1;
    return {u32(rows, k, "rows"), split1, split2, u32(rb, k, "row bytes"), {w0, w1, w2}};
}

template <class T>
bool aligned(const View<T>& v, std::size_t bytes) {
    return reinterpret_cast<std::uintptr_t>(v.host()) % bytes == 0;
}

// The groups of 4 columns the mat-vec reads with 4-wide loads (matvec.hpp): all of them where the input
// rows are float4-aligned and, for a plain type, every weight row is aligned to its vector of 4; else
// none. GGUF only aligns a tensor's start, so a row is as aligned as its byte length allows.
inline std::uint32_t vector_quads(DType type, std::span<const WeightRows> parts, std::size_t rb, int cols, View<float> x,
                                  int x_stride) {
    bool ok = x_stride % 4 == 0 && aligned(x, 16);
    if (!is_quantized(type)) {
        const std::size_t a = type == DType::F32 ? 16 : 8;
        ok = ok && rb % a == 0;
        for (const auto& p : parts) ok = ok && aligned(p.w, a);
    }
    return ok ? std::uint32_t(cols / 4) : 0;
}

// Whether the library has kernels for weights of `type`, else an error naming the types it has.
inline void check_holds(std::string_view family, const KernelConfig& c, DType type) {
    check(c.holds(type), family,
          "weights of type " + std::string(dtype_name(type)) + " have no kernel in this library (it holds " +
              metal_src::dtype_set_names(c.weight_types) + ")");
}

}  // namespace detail

// Y[t][r] = dot(W[r], X[t]) for t < n_tokens by mat-vec (one token or a batch, one grid row each), for
// weights of any type the library holds; W is `parts` stacked.
inline void matvec(Encoder& e, const KernelConfig& c, DType type, std::span<const WeightRows> parts, int cols, View<float> x,
                   int n_tokens, int x_stride, View<float> y, int y_stride) {
    detail::check_holds("matvec", c, type);
    const auto name = metal_src::concat<16>("matvec_", metal_src::dtype_suffix(type));
    const std::string_view k = name.view();
    const auto s = detail::check_product(k, type, parts, cols, x, n_tokens, x_stride, y, y_stride);
    const metal_src::MatvecParams p{s.rows,
                                    s.split1,
                                    s.split2,
                                    std::uint32_t(cols),
                                    s.row_bytes,
                                    detail::vector_quads(type, parts, s.row_bytes, cols, x, x_stride),
                                    std::uint32_t(x_stride),
                                    std::uint32_t(y_stride)};
    detail::encode(e, k, {s.w[0], s.w[1], s.w[2], detail::bind(x), detail::bind(y)}, p, 0,
                   {detail::ceil_div(s.rows, KernelConfig::kMatvecRowsPerGroup), std::uint32_t(n_tokens)},
                   {KernelConfig::kMatvecThreads});
}
inline void matvec(Encoder& e, const KernelConfig& c, DType type, View<std::byte> w, int rows, int cols, View<float> x,
                   int n_tokens, int x_stride, View<float> y, int y_stride) {
    const WeightRows part{w, rows};
    matvec(e, c, type, {&part, 1}, cols, x, n_tokens, x_stride, y, y_stride);
}

// The same product with simdgroup matrices, for the quantized types the library holds.
inline void gemm(Encoder& e, const KernelConfig& c, DType type, std::span<const WeightRows> parts, int cols, View<float> x,
                 int n_tokens, int x_stride, View<float> y, int y_stride) {
    detail::check(is_quantized(type), "gemm", "the GEMM is for quantized weights, not " + std::string(dtype_name(type)));
    detail::check_holds("gemm", c, type);
    const auto name = metal_src::concat<16>("gemm_", metal_src::dtype_suffix(type));
    const std::string_view k = name.view();
    const auto s = detail::check_product(k, type, parts, cols, x, n_tokens, x_stride, y, y_stride);
    const metal_src::GemmParams p{s.rows,        s.split1,           s.split2,
                                  std::uint32_t(cols), s.row_bytes, std::uint32_t(n_tokens),
                                  std::uint32_t(x_stride), std::uint32_t(y_stride)};
    detail::encode(e, k, {s.w[0], s.w[1], s.w[2], detail::bind(x), detail::bind(y)}, p,
                   detail::tg_bytes(metal_src::kGemmThreadgroupFloats),
                   {detail::ceil_div(s.rows, KernelConfig::kGemmTile), detail::ceil_div(std::size_t(n_tokens), KernelConfig::kGemmTile)},
                   {KernelConfig::kGemmThreads});
}
inline void gemm(Encoder& e, const KernelConfig& c, DType type, View<std::byte> w, int rows, int cols, View<float> x,
                 int n_tokens, int x_stride, View<float> y, int y_stride) {
    const WeightRows part{w, rows};
    gemm(e, c, type, {&part, 1}, cols, x, n_tokens, x_stride, y, y_stride);
}

// Mat-vec for decode and small batches, the GEMM for quantized prefill batches.
inline void matmul(Encoder& e, const KernelConfig& c, DType type, std::span<const WeightRows> parts, int cols, View<float> x,
                   int n_tokens, int x_stride, View<float> y, int y_stride) {
    if (c.has_gemm(type) && n_tokens >= kGemmMinTokens)
        gemm(e, c, type, parts, cols, x, n_tokens, x_stride, y, y_stride);
    else
        matvec(e, c, type, parts, cols, x, n_tokens, x_stride, y, y_stride);
}
inline void matmul(Encoder& e, const KernelConfig& c, DType type, View<std::byte> w, int rows, int cols, View<float> x,
                   int n_tokens, int x_stride, View<float> y, int y_stride) {
    const WeightRows part{w, rows};
    matmul(e, c, type, {&part, 1}, cols, x, n_tokens, x_stride, y, y_stride);
}

// RoPE in place on n_q_heads heads at the start of each row and n_k_heads at k_offset (0 K heads for a
// lone vector), positions pos0, pos0 + 1, ... per row; head_dim/2 freq_factors divide the pairs' angles
// (all ones: plain RoPE).
inline void rope(Encoder& e, const KernelConfig& c, View<float> x, View<float> freq_factors, int n_tokens, int n_q_heads,
                 int n_k_heads, int head_dim, int stride, int k_offset, int pos0, float mscale = 1.0f) {
    constexpr std::string_view k = "rope";
    detail::check(n_tokens > 0 && n_q_heads > 0 && n_k_heads >= 0, k, "tokens and query heads must be positive");
    detail::check(head_dim == c.head_dim, k, "head_dim " + std::to_string(head_dim) + " is not the " +
                                                 std::to_string(c.head_dim) + " this library was built for");
    detail::check(pos0 >= 0, k, "positions must be non-negative");
    const int row_end = std::max(n_q_heads * head_dim, n_k_heads > 0 ? k_offset + n_k_heads * head_dim : 0);
    detail::check(stride >= row_end && (n_k_heads == 0 || k_offset >= n_q_heads * head_dim), k,
                  "the heads do not fit in rows of " + std::to_string(stride) + " floats");
    detail::check_capacity(x, std::size_t(n_tokens - 1) * stride + row_end, k, "x");
    detail::check_capacity(freq_factors, std::size_t(head_dim / 2), k, "freq_factors");
    const metal_src::RopeParams p{std::uint32_t(n_tokens), std::uint32_t(n_q_heads), std::uint32_t(n_k_heads),
                                  std::uint32_t(stride), std::uint32_t(k_offset), std::uint32_t(pos0), mscale};
    const std::size_t threads = std::size_t(n_tokens) * (n_q_heads + n_k_heads) * (head_dim / 2);
    detail::encode(e, k, {detail::bind(x), detail::bind(freq_factors)}, p, 0, {detail::ceil_div(threads, 256)}, {256});
}

inline std::uint32_t reduction_threads(int n) {
    std::uint32_t t = 32;
    while (t < std::uint32_t(n) && t < 1024) t *= 2;
    return t;
}

inline void softmax(Encoder& e, View<float> x, int n) {
    constexpr std::string_view k = "softmax";
    detail::check(n > 0, k, "n must be positive");
    detail::check_capacity(x, std::size_t(n), k, "x");
    const metal_src::SoftmaxParams p{std::uint32_t(n)};
    detail::encode(e, k, {detail::bind(x)}, p, detail::tg_bytes(KernelConfig::kReduceScratch), {1}, {reduction_threads(n)});
}

// out[t][i] = silu(gu[t][i]) * gu[t][up_offset + i].
inline void silu_mul(Encoder& e, View<float> gu, View<float> out, int n, int n_tokens, int in_stride, int up_offset,
                     int out_stride) {
    constexpr std::string_view k = "silu_mul";
    detail::check(n > 0 && n_tokens > 0, k, "n and tokens must be positive");
    detail::check(in_stride >= up_offset + n && up_offset >= n && out_stride >= n, k, "gate and up must not overlap");
    detail::check_capacity(gu, std::size_t(n_tokens - 1) * in_stride + up_offset + n, k, "gu");
    detail::check_capacity(out, std::size_t(n_tokens - 1) * out_stride + n, k, "out");
    const metal_src::SiluMulParams p{std::uint32_t(n), std::uint32_t(n_tokens), std::uint32_t(in_stride),
                                     std::uint32_t(up_offset), std::uint32_t(out_stride)};
    detail::encode(e, k, {detail::bind(gu), detail::bind(out)}, p, 0, {detail::ceil_div(std::size_t(n) * n_tokens, 256)}, {256});
}

inline void add(Encoder& e, View<float> a, View<float> b, View<float> out, int n) {
    constexpr std::string_view k = "add";
    detail::check(n > 0, k, "n must be positive");
    detail::check_capacity(a, std::size_t(n), k, "a");
    detail::check_capacity(b, std::size_t(n), k, "b");
    detail::check_capacity(out, std::size_t(n), k, "out");
    const metal_src::AddParams p{std::uint32_t(n)};
    detail::encode(e, k, {detail::bind(a), detail::bind(b), detail::bind(out)}, p, 0, {detail::ceil_div(std::size_t(n), 256)}, {256});
}

// a += b.
inline void add_inplace(Encoder& e, View<float> a, View<float> b, int n) { add(e, a, b, a, n); }

// x *= factor.
inline void scale(Encoder& e, View<float> x, float factor, int n) {
    constexpr std::string_view k = "scale";
    detail::check(n > 0, k, "n must be positive");
    detail::check_capacity(x, std::size_t(n), k, "x");
    const metal_src::ScaleParams p{std::uint32_t(n), factor};
    detail::encode(e, k, {detail::bind(x)}, p, 0, {detail::ceil_div(std::size_t(n), 256)}, {256});
}

// x[t][i] += bias[i] for n_tokens rows of `stride` floats.
inline void add_bias(Encoder& e, View<float> x, View<float> bias, int n, int n_tokens, int stride) {
    constexpr std::string_view k = "add_bias";
    detail::check(n > 0 && n_tokens > 0 && stride >= n, k, "n and tokens must be positive and rows hold n");
    detail::check_capacity(x, std::size_t(n_tokens - 1) * stride + n, k, "x");
    detail::check_capacity(bias, std::size_t(n), k, "bias");
    const metal_src::AddBiasParams p{std::uint32_t(n), std::uint32_t(n_tokens), std::uint32_t(stride)};
    detail::encode(e, k, {detail::bind(x), detail::bind(bias)}, p, 0, {detail::ceil_div(std::size_t(n) * n_tokens, 256)}, {256});
}

// out[t] = row tokens[t] of a (vocab x cols) table of `type`. The token ids are checked on the host (the
// buffer is CPU-visible and written before encoding).
inline void embed(Encoder& e, DType type, View<std::byte> table, int vocab, int cols, View<std::int32_t> tokens, int n_tokens,
                  View<float> out, int out_stride) {
    const auto name = metal_src::concat<16>("embed_", metal_src::dtype_suffix(type));
    const std::string_view k = name.view();
    detail::check(!metal_src::dtype_suffix(type).empty(), "embed",
                  "embeddings of type " + std::string(dtype_name(type)) + " have no kernel (" +
                      metal_src::dtype_set_names(~std::uint32_t(0)) + ")");
    detail::check(vocab > 0 && cols > 0 && n_tokens > 0 && out_stride >= cols, k, "sizes must be positive");
    const std::uint32_t block = dtype_info(type).block_elems;
    detail::check(cols % block == 0, k, std::string(dtype_name(type)) + " rows need a multiple of " + std::to_string(block) + " columns");
    const std::size_t rb = row_bytes(type, std::size_t(cols));
    detail::check_capacity(table, std::size_t(vocab) * rb, k, "table");
    detail::check_capacity(tokens, std::size_t(n_tokens), k, "tokens");
    detail::check_capacity(out, std::size_t(n_tokens - 1) * out_stride + cols, k, "out");
    for (int t = 0; t < n_tokens; ++t) {
        const std::int32_t id = tokens.host()[t];
        detail::check(id >= 0 && id < vocab, k, "token id " + std::to_string(id) + " is outside [0, " + std::to_string(vocab) + ")");
    }
    const metal_src::EmbedParams p{std::uint32_t(n_tokens), std::uint32_t(cols), detail::u32(rb, k, "row bytes"),
                                   std::uint32_t(out_stride)};
    detail::encode(e, k, {detail::bind(table), detail::bind(tokens), detail::bind(out)}, p, 0,
                   {detail::ceil_div(std::size_t(n_tokens) * cols / metal_src::embed_elements_per_thread(type), 256)}, {256});
}

// Stores the K and V of n_tokens rows (at k_offset / v_offset of each src row) as f16 at cache rows
// (pos0 + t) % capacity.
inline void kv_append(Encoder& e, View<float> src, View<std::uint16_t> k_cache, View<std::uint16_t> v_cache, int n_tokens,
                      int kv_dim, int src_stride, int k_offset, int v_offset, int pos0, int capacity) {
    constexpr std::string_view k = "kv_append";
    detail::check(n_tokens > 0 && kv_dim > 0 && capacity > 0 && pos0 >= 0, k, "sizes must be positive");
    detail::check(n_tokens <= capacity, k, "more tokens than cache rows");
    detail::check(src_stride >= std::max(k_offset, v_offset) + kv_dim, k, "K and V must lie inside the source rows");
    detail::check_capacity(src, std::size_t(n_tokens - 1) * src_stride + std::max(k_offset, v_offset) + kv_dim, k, "src");
    detail::check_capacity(k_cache, std::size_t(capacity) * kv_dim, k, "k_cache");
    detail::check_capacity(v_cache, std::size_t(capacity) * kv_dim, k, "v_cache");
    const metal_src::KvAppendParams p{std::uint32_t(n_tokens), std::uint32_t(kv_dim), std::uint32_t(src_stride),
                                      std::uint32_t(k_offset), std::uint32_t(v_offset), std::uint32_t(pos0),
                                      std::uint32_t(capacity)};
    detail::encode(e, k, {detail::bind(src), detail::bind(k_cache), detail::bind(v_cache)}, p, 0,
                   {detail::ceil_div(2 * std::size_t(n_tokens) * kv_dim, 256)}, {256});
}

// One query (n_heads x head_dim floats) over cache positions [first, last], scores held in threadgroup
// memory (so the span is limited by the 32 KiB budget).
inline void attention(Encoder& e, const KernelConfig& c, View<float> q, View<std::uint16_t> k_cache,
                      View<std::uint16_t> v_cache, View<float> out, int n_heads, int n_kv_heads, int head_dim, int first,
                      int last, int capacity) {
    constexpr std::string_view k = "attention";
    detail::check_heads(k, c, n_heads, n_kv_heads, head_dim);
    detail::check(first >= 0 && last >= first, k, "positions must satisfy 0 <= first <= last");
    detail::check(last - first + 1 <= capacity, k, "the attended span is longer than the cache");
    const std::size_t tg = detail::tg_bytes(std::size_t(metal_src::attention_threadgroup_floats(last - first + 1)));
    detail::check(tg <= std::size_t(metal_src::kThreadgroupMemoryLimit), k,
                  std::to_string(last - first + 1) + " positions need " + std::to_string(tg) +
                      " bytes of threadgroup memory, over the 32 KiB limit (use flash_decode)");
    detail::check_capacity(q, std::size_t(n_heads) * head_dim, k, "q");
    detail::check_capacity(k_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "k_cache");
    detail::check_capacity(v_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "v_cache");
    detail::check_capacity(out, std::size_t(n_heads) * head_dim, k, "out");
    const metal_src::AttentionParams p{std::uint32_t(n_heads), std::uint32_t(n_kv_heads), std::uint32_t(first),
                                       std::uint32_t(last), std::uint32_t(capacity)};
    detail::encode(e, k, {detail::bind(q), detail::bind(k_cache), detail::bind(v_cache), detail::bind(out)}, p, tg,
                   {std::uint32_t(n_heads)}, {256});
}

// Causal attention of n_tokens queries at positions pos0 .. pos0 + n_tokens - 1 (their K/V already in
// the cache), each over its sliding window (0: everything before it); one threadgroup per head and block
// of kFlashQueries tokens.
inline void flash_prefill(Encoder& e, const KernelConfig& c, View<float> q, View<std::uint16_t> k_cache,
                          View<std::uint16_t> v_cache, View<float> out, int n_tokens, int n_heads, int n_kv_heads,
                          int head_dim, int q_stride, int out_stride, int pos0, int window, int capacity) {
    constexpr std::string_view k = "flash_prefill";
    detail::check_heads(k, c, n_heads, n_kv_heads, head_dim);
    detail::check(n_tokens > 0 && pos0 >= 0 && window >= 0 && capacity > 0, k, "sizes must be positive");
    detail::check(q_stride >= n_heads * head_dim && out_stride >= n_heads * head_dim, k, "row strides too small");
    // Every row the batch reads must still hold its position after the batch's own K/V were stored.
    const int last = pos0 + n_tokens - 1;
    detail::check(last - detail::first_position(pos0, window) + 1 <= capacity, k,
                  "the batch attends positions " + std::to_string(detail::first_position(pos0, window)) + ".." +
                      std::to_string(last) + ", more than the cache's " + std::to_string(capacity) + " rows");
    detail::check_capacity(q, std::size_t(n_tokens - 1) * q_stride + n_heads * head_dim, k, "q");
    detail::check_query_alignment(k, q, q_stride);
    detail::check_capacity(k_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "k_cache");
    detail::check_capacity(v_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "v_cache");
    detail::check_capacity(out, std::size_t(n_tokens - 1) * out_stride + n_heads * head_dim, k, "out");
    const metal_src::FlashPrefillParams p{std::uint32_t(n_heads), std::uint32_t(n_kv_heads), std::uint32_t(n_tokens),
                                          std::uint32_t(q_stride), std::uint32_t(out_stride), std::uint32_t(pos0),
                                          std::uint32_t(window), std::uint32_t(capacity)};
    detail::encode(e, k, {detail::bind(q), detail::bind(k_cache), detail::bind(v_cache), detail::bind(out)}, p,
                   detail::tg_bytes(metal_src::flash_prefill_threadgroup_floats(head_dim)),
                   {std::uint32_t(n_heads), detail::ceil_div(std::size_t(n_tokens), metal_src::kFlashQueries)},
                   {KernelConfig::kFlashThreads});
}

// Floats of the partials buffer flash_decode needs.
constexpr std::size_t flash_decode_partials(int n_heads, int head_dim) {
    return std::size_t(n_heads) * kFlashMaxSplits * std::size_t(metal_src::flash_partial_floats(head_dim));
}

// Split-K decode attention of one query at `pos` over its window: the window is cut into at most
// kFlashMaxSplits chunks attended by separate threadgroups, then merged by flash_reduce.
inline void flash_decode(Encoder& e, const KernelConfig& c, View<float> q, View<std::uint16_t> k_cache,
                         View<std::uint16_t> v_cache, View<float> partials, View<float> out, int n_heads, int n_kv_heads,
                         int head_dim, int pos, int window, int capacity) {
    constexpr std::string_view k = "flash_decode";
    detail::check_heads(k, c, n_heads, n_kv_heads, head_dim);
    detail::check(pos >= 0 && window >= 0 && capacity > 0, k, "position, window and capacity must be valid");
    const int n = pos - detail::first_position(pos, window) + 1;
    detail::check(n <= capacity, k, "the window of " + std::to_string(n) + " positions exceeds the cache's " +
                                        std::to_string(capacity) + " rows");
    // Chunks of whole key tiles, as few as give every split at least one tile.
    const int tiles = (n + KernelConfig::kFlashTile - 1) / KernelConfig::kFlashTile;
    const int chunk = (tiles + kFlashMaxSplits - 1) / kFlashMaxSplits * KernelConfig::kFlashTile;
    const int splits = (n + chunk - 1) / chunk;
    detail::check_capacity(q, std::size_t(n_heads) * head_dim, k, "q");
    detail::check_query_alignment(k, q, head_dim);
    detail::check_capacity(k_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "k_cache");
    detail::check_capacity(v_cache, std::size_t(capacity) * n_kv_heads * head_dim, k, "v_cache");
    detail::check_capacity(partials, std::size_t(n_heads) * splits * metal_src::flash_partial_floats(head_dim), k, "partials");
    detail::check_capacity(out, std::size_t(n_heads) * head_dim, k, "out");
    const metal_src::FlashDecodeParams p{std::uint32_t(n_heads), std::uint32_t(n_kv_heads), std::uint32_t(pos),
                                         std::uint32_t(window), std::uint32_t(capacity), std::uint32_t(chunk),
                                         std::uint32_t(splits)};
    detail::encode(e, k, {detail::bind(q), detail::bind(k_cache), detail::bind(v_cache), detail::bind(partials)}, p,
                   detail::tg_bytes(metal_src::kFlashThreadgroupFloats), {std::uint32_t(n_heads), std::uint32_t(splits)},
                   {KernelConfig::kFlashThreads});
    e.barrier();
    const metal_src::FlashReduceParams r{std::uint32_t(n_heads), std::uint32_t(splits)};
    detail::encode(e, "flash_reduce", {detail::bind(partials), detail::bind(out)}, r, 0, {std::uint32_t(n_heads)},
                   {std::uint32_t(std::min(256, (head_dim + 31) / 32 * 32))});
}

// softmax(logits / temperature) and a categorical draw with uniform u (temperature 0: the argmax), as
// forge::sample_categorical: the token id (-1 when a logit is not finite) and its log-probability at
// temperature 1. One threadgroup of kSampleSegments threads, the segments that twin sums over.
inline void softmax_sample(Encoder& e, View<float> logits, View<std::int32_t> out_token, View<float> out_logprob, int n,
                           float temperature, float u) {
    constexpr std::string_view k = "softmax_sample";
    static_assert(kSampleSegments % 32 == 0 && kSampleSegments <= 1024, "softmax_sample's threadgroup must be legal on Apple GPUs");
    static_assert(metal_src::softmax_sample_threadgroup_floats(kSampleSegments) * 4 <= metal_src::kThreadgroupMemoryLimit,
                  "softmax_sample's threadgroup memory must fit in 32 KiB");
    detail::check(n > 0, k, "n must be positive");
    detail::check(temperature >= 0.0f && std::isfinite(temperature), k,
                  "temperature must be >= 0, got " + std::to_string(temperature));
    detail::check(u >= 0.0f && u < 1.0f, k, "random value must be in [0, 1), got " + std::to_string(u));
    detail::check_capacity(logits, std::size_t(n), k, "logits");
    detail::check_capacity(out_token, 1, k, "out_token");
    detail::check_capacity(out_logprob, 1, k, "out_logprob");
    const metal_src::SoftmaxSampleParams p{std::uint32_t(n), temperature, u};
    detail::encode(e, k, {detail::bind(logits), detail::bind(out_token), detail::bind(out_logprob)}, p,
                   detail::tg_bytes(metal_src::softmax_sample_threadgroup_floats(kSampleSegments)), {1},
                   {std::uint32_t(kSampleSegments)});
}

}  // namespace forge::metal
