#pragma once
// Y = W·X for one token (decode: a mat-vec) or a batch (prefill: a GEMM), with the micro-kernels of the
// instruction set forge was compiled for. The weight rows are split between threads; each thread walks
// its rows in tiles of kRows, and for each tile every token tile of kTokens, so a tile's weights are
// read from memory once per batch and reused from L1 by every token tile. Tile shapes are compile-time
// constants of the kernel; the driver instantiates every smaller tile for the edges. Where an
// instruction set has a batch kernel for a weight type (BatchKernel: AVX-512 Q8_0/Q4_0/Q5_0/Q4_K/Q5_K/Q6_K), batches of
// its kMinTokens or more go to it instead; where it has no kernel for a type at all, the portable one runs.
#include <algorithm>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>

#include "forge/core/error.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/cpu/kernels/kernels_avx512.hpp"
#include "forge/cpu/kernels/kernels_avx512_blocks.hpp"
#include "forge/cpu/kernels/kernels_avx512_offset_blocks.hpp"
#include "forge/cpu/kernels/kernels_avx512_vnni.hpp"
#include "forge/cpu/kernels/kernels_avx2.hpp"
#include "forge/cpu/kernels/kernels_avx2_blocks.hpp"
#include "forge/cpu/kernels/kernels_neon.hpp"
#include "forge/cpu/kernels/kernels_neon_blocks.hpp"
#include "forge/cpu/kernels/kernels_portable.hpp"
#include "forge/cpu/matmul.hpp"
#include "forge/cpu/thread_pool.hpp"
#include "forge/cpu/weight_view.hpp"

namespace forge::cpu {

// One GEMM input: float rows, quantized to each kernel's input layout on first use and reused until
// the next set(), so Q, K and V (or gate and up) quantize their shared input once.
class GemmInput {
public:
    void set(const float* x, int tokens, int stride, int cols) {
        rows_ = {x, tokens, stride, cols};
        for (auto& s : q8_rows_) s.fresh = false;
        for (auto& s : q8_lanes_) s.fresh = false;
        q8k_rows_.fresh = q81_rows_.fresh = false;
    }
    const FloatRows& rows() const { return rows_; }

    // Quantizes the rows to kernel K's layout unless that is already done since set().
    template <class K>
    void quantize(ThreadPool& pool) {
        auto& slot = slot_for<K>(*this);
        if (slot.fresh && slot.rows.layout() == K::kLayout) return;
        slot.rows.prepare(rows_.n, rows_.cols, K::kLayout);
        if (rows_.n == 1) slot.rows.quantize(rows_.x, rows_.stride, 0, 1);
        else if constexpr (std::is_same_v<typename K::Input, Q8Lanes>) quantize_by_lanes(slot.rows, pool);
        else pool.parallel_for(std::size_t(rows_.n), [&](std::size_t b, std::size_t e) {
            slot.rows.quantize(rows_.x, rows_.stride, int(b), int(e));
        });
        slot.fresh = true;
    }
    // The rows quantize<K>() made.
    template <class K>
    const typename K::Input& quantized() const {
        return slot_for<K>(*this).rows;
    }

private:
    // Tokens interleaved by lanes are quantized a whole group of 16 per part (two threads writing tokens
    // of one group would share every cache line it has), and where the groups are fewer than the pool's
    // parts (128 tokens are 8 groups), each group's row is split into column ranges as well.
    void quantize_by_lanes(Q8Lanes& lanes, ThreadPool& pool) const {
        const int groups = lanes.groups(), units = rows_.cols / lanes.quantum();
        const int splits = std::clamp(pool.parts_for(std::size_t(groups) * std::size_t(units)) / groups, 1, units);
        pool.run(groups * splits, [&](int part, int) {
            const int g = part / splits, s = part % splits;
            const int t0 = g * Q8Lanes::kLanes, t1 = std::min(rows_.n, t0 + Q8Lanes::kLanes);
            const int c0 = units * s / splits * lanes.quantum(), c1 = units * (s + 1) / splits * lanes.quantum();
            lanes.quantize(rows_.x, rows_.stride, t0, t1, c0, c1);
        });
    }
    template <class In>
    struct Slot {
        In rows;
        bool fresh = false;
    };
    // One slot per input type and layout an instruction set's kernels may use side by side: its Q4_0 layout
    // (offset 8), the plain layout (the portable kernels', which it may fall back to) and its Q8_0 layout;
    // by lanes, one per layout of the AVX-512 batch kernels (Q8_0, Q4_0, Q5_0, the K-quants with mins, Q6_K).
    template <class K, class Self>
    static auto& slot_for(Self& self) {
        using In = typename K::Input;
        if constexpr (std::is_same_v<In, Q8KRows>) return self.q8k_rows_;
        else if constexpr (std::is_same_v<In, Q81Rows>) return self.q81_rows_;
        else if constexpr (std::is_same_v<In, Q8Lanes>) return self.q8_lanes_[lanes_slot(K::kLayout)];
        else return self.q8_rows_[K::kLayout.offset == 8 ? 0 : K::kLayout == Q8Layout{} ? 1 : 2];
    }
    static constexpr std::size_t lanes_slot(LanesLayout l) {
        return l.k_codes ? 3 + std::size_t(l.sums) : l.offset == 8 ? 1 : l.offset == 16 ? 2 : 0;
    }
    FloatRows rows_;
    Slot<Q8Rows> q8_rows_[3];
    Slot<Q8Lanes> q8_lanes_[5];
    Slot<Q8KRows> q8k_rows_;
    Slot<Q81Rows> q81_rows_;
};

namespace detail {

// Rows w0.. (R of them, `gap` rows apart) times tokens t0..t0+T-1; y points at row w0's column. The
// same rows `ahead` bytes further on are fetched while the tile computes: rows are short (a few KB),
// too short for the hardware prefetcher to ramp up on each before it ends. Cols is the row length when
// known at compile time (0: `cols` at run time).
template <class K, int R, int T, int Cols>
void tile(const std::byte* w0, std::size_t stride, int gap, std::size_t ahead, int cols, const typename K::Input& in, int t0,
          float* y, std::size_t y_stride) {
    typename K::Acc acc[R][T];
    FORGE_UNROLL for (auto& row : acc)
        FORGE_UNROLL for (auto& a : row) a = K::zero();
    if constexpr (Cols > 0) cols = Cols;
    const int steps = K::steps(cols);
    const std::size_t row_gap = stride * std::size_t(gap), step_bytes = stride / std::size_t(steps);
    const std::byte* next = w0 + ahead;
    for (int s = 0; s < steps; ++s, next += step_bytes) {
        FORGE_UNROLL for (int r = 0; r < R; ++r) __builtin_prefetch(next + std::size_t(r) * row_gap);
        decltype(K::load_w(w0, s, cols)) w[R];
        FORGE_UNROLL for (int r = 0; r < R; ++r) w[r] = K::load_w(w0 + std::size_t(r) * row_gap, s, cols);
        FORGE_UNROLL for (int t = 0; t < T; ++t) {
            const auto x = K::load_x(in, t0 + t, s);
            FORGE_UNROLL for (int r = 0; r < R; ++r) K::madd(acc[r][t], w[r], x);
        }
    }
    FORGE_UNROLL for (int t = 0; t < T; ++t)
        FORGE_UNROLL for (int r = 0; r < R; ++r) y[std::size_t(t0 + t) * y_stride + std::size_t(r) * std::size_t(gap)] = K::reduce(acc[r][t]);
}

template <class K>
using TileFn = void (*)(const std::byte*, std::size_t, int, std::size_t, int, const typename K::Input&, int, float*, std::size_t);

template <class K, int Cols, std::size_t... I>
constexpr std::array<TileFn<K>, sizeof...(I)> tile_table(std::index_sequence<I...>) {
    return {&tile<K, int(I) / K::kTokens + 1, int(I) % K::kTokens + 1, Cols>...};
}

// Weight rows [r0, r1) against every token of `in`: the kernel's own loop where it has one, else tiles
// of its micro-kernel.
template <class K, int Cols>
void gemm_rows(const WeightView& w, const typename K::Input& in, int r0, int r1, float* y, std::size_t y_stride) {
    if constexpr (requires { K::template gemm_rows<Cols>(w, in, r0, r1, y, y_stride); }) {
        K::template gemm_rows<Cols>(w, in, r0, r1, y, y_stride);
    } else if constexpr (requires { K::gemm_rows(w, in, r0, r1, y, y_stride); }) {
        K::gemm_rows(w, in, r0, r1, y, y_stride);
    } else {
        static constexpr auto kTiles = tile_table<K, Cols>(std::make_index_sequence<K::kRows * K::kTokens>());
        const auto fn = [](int rows, int tokens) { return kTiles[std::size_t((rows - 1) * K::kTokens + tokens - 1)]; };
        constexpr int R = K::kRows;
        const std::size_t stride = w.row_stride();
        const int tokens = in.tokens();
        if (tokens <= K::kTokens) {
            // Decode: tile i takes row i of each of the rows' R quarters, as the Q4_0 kernel does (see
            // kernels_avx512.hpp): R sequential streams the hardware prefetcher follows, each moving on
            // one row per tile.
            const int full = (r1 - r0) / R, rest = (r1 - r0) % R;
            const std::size_t ahead = prefetch_distance(stride);
            for (int i = 0; i < full; ++i) fn(R, tokens)(w.row(r0 + i), stride, full, ahead, w.cols, in, 0, y + r0 + i, y_stride);
            if (rest > 0) fn(rest, tokens)(w.row(r0 + full * R), stride, 1, std::size_t(rest) * stride, w.cols, in, 0, y + r0 + full * R, y_stride);
            return;
        }
        // Batches: each tile (adjacent rows) against every group of tokens, its weights reused from L1.
        for (int r = r0; r < r1; r += R) {
            const int nr = std::min(R, r1 - r);
            for (int t = 0; t < tokens; t += K::kTokens)
                fn(nr, std::min(K::kTokens, tokens - t))(w.row(r), stride, 1, std::size_t(R) * stride, w.cols, in, t, y + r, y_stride);
        }
    }
}

// Isa's kernel for weights W, or the portable one where Isa has none.
template <class Isa, DType W>
using KernelOrPortable = std::conditional_t<requires { Kernel<Isa, W>::kRows; }, Kernel<Isa, W>, Kernel<isa::Portable, W>>;

// Calls f.template operator()<K>() with the kernel for `type` and a batch of `tokens`; false when
// there is none.
template <class Isa, class F>
bool with_kernel(DType type, int tokens, F&& f) {
    const auto pick = [&]<DType W>() {
        if constexpr (requires { BatchKernel<Isa, W>::kMinTokens; }) {
            if (tokens >= BatchKernel<Isa, W>::kMinTokens) return f.template operator()<BatchKernel<Isa, W>>();
        }
        f.template operator()<KernelOrPortable<Isa, W>>();
    };
    switch (type) {
        case DType::F32: pick.template operator()<DType::F32>(); return true;
        case DType::F16: pick.template operator()<DType::F16>(); return true;
        case DType::BF16: pick.template operator()<DType::BF16>(); return true;
        case DType::Q8_0: pick.template operator()<DType::Q8_0>(); return true;
        case DType::Q4_0: pick.template operator()<DType::Q4_0>(); return true;
        case DType::Q4_1: pick.template operator()<DType::Q4_1>(); return true;
        case DType::Q5_0: pick.template operator()<DType::Q5_0>(); return true;
        case DType::Q5_1: pick.template operator()<DType::Q5_1>(); return true;
        case DType::Q2_K: pick.template operator()<DType::Q2_K>(); return true;
        case DType::Q3_K: pick.template operator()<DType::Q3_K>(); return true;
        case DType::Q4_K: pick.template operator()<DType::Q4_K>(); return true;
        case DType::Q5_K: pick.template operator()<DType::Q5_K>(); return true;
        case DType::Q6_K: pick.template operator()<DType::Q6_K>(); return true;
        default: return false;
    }
}

// The rows a thread's share of a matrix is a multiple of, for a batch of `tokens`.
template <class K>
int row_grain(int tokens) {
    if constexpr (requires { K::row_grain(tokens); }) return K::row_grain(tokens);
    else return K::kRows;
}

// The row length a kernel is compiled for under gemm<Isa, Cols>: Cols, or 0 (any) for kernels that opt out.
template <class K, int Cols>
inline constexpr int kKernelCols = requires { K::kGenericLength; } ? 0 : Cols;

}  // namespace detail

// One product of a GEMM batch: Y[t][r] = W[r]·X[t], Y rows `y_stride` floats apart.
struct GemmJob {
    const WeightView& w;
    float* y;
    int y_stride;
};

// Every job against the same input in one dispatch (Q, K and V; gate and up): each part of the work
// is a share of every matrix's rows, so a decode step waits on one barrier, not one per matrix. Weight types
// without a kernel (none that forge computes with) would take the reference matmul.
//
// Cols, when not 0, is every matrix's row length known at compile time (a model with compiled traits
// knows it): the kernels then lay out a row's whole loop at compile time, which measured 1.1-1.35x on
// a hot mat-vec of short rows (SmolLM2's 576 columns gained most).
template <class Isa = isa::Native, int Cols = 0>
void gemm(std::initializer_list<GemmJob> jobs, GemmInput& in, ThreadPool& pool) {
    bool fast = false;
    for (const GemmJob& j : jobs) {
        if (Cols > 0 && j.w.cols != Cols)
            throw Error("a matrix of " + std::to_string(j.w.cols) + " columns was given to a GEMM compiled for " + std::to_string(Cols));
        // Quantize the input for each layout first: the dispatch below cannot use the pool again.
        const bool found = detail::with_kernel<Isa>(j.w.type, in.rows().n, [&]<class K>() {
            if constexpr (QuantizedKernel<K>) in.quantize<K>(pool);
        });
        if (!found) matmul(j.w, in.rows().x, in.rows().n, in.rows().stride, j.y, j.y_stride, pool);
        fast = fast || found;
    }
    if (!fast) return;
    // Parts follow the largest matrix's tile count; part p takes the same share of every matrix.
    std::size_t units = 1;
    for (const GemmJob& j : jobs) units = std::max(units, std::size_t(j.w.rows) / 4);
    const int parts = pool.parts_for(units);
    pool.run(parts, [&](int part, int) {
        for (const GemmJob& j : jobs)
            detail::with_kernel<Isa>(j.w.type, in.rows().n, [&]<class K>() {
                const std::size_t grain = std::size_t(detail::row_grain<K>(in.rows().n)), rows = std::size_t(j.w.rows);
                const std::size_t tiles = (rows + grain - 1) / grain;
                const int b = int(std::min(rows, pool.part_begin(part, parts, tiles) * grain));
                const int e = int(std::min(rows, pool.part_begin(part + 1, parts, tiles) * grain));
                if (b >= e) return;
                // Float weights keep the runtime row length: not measured to gain, and one kernel set fewer
                // for every compiled model to instantiate.
                if constexpr (QuantizedKernel<K>) detail::gemm_rows<K, detail::kKernelCols<K, Cols>>(j.w, in.quantized<K>(), b, e, j.y, std::size_t(j.y_stride));
                else detail::gemm_rows<K, 0>(j.w, in.rows(), b, e, j.y, std::size_t(j.y_stride));
            });
    });
}

template <class Isa = isa::Native, int Cols = 0>
void gemm(const WeightView& w, GemmInput& in, float* y, int y_stride, ThreadPool& pool) {
    gemm<Isa, Cols>({GemmJob{w, y, y_stride}}, in, pool);
}

}  // namespace forge::cpu
