#pragma once
// The AMX batch kernel for Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K weights (prefill on CPUs with AMX-INT8:
// Sapphire Rapids and later), the VNNI batch kernel's loop with its dot products done by tiles. Included
// by kernels_avx512_vnni.hpp, whose unpacking, Q8Lanes input, scaling and token stores it shares.
//
// Q8Lanes already lays out a group of 16 tokens and one block (32 values, or Q6_K's 16) as AMX wants its
// second operand: a 64-byte row per four values, row k holding codes 4k..4k+3 of each token. The first
// operand is 16 weight rows' signed codes of the block, so tdpbssd gives the 16 x 16 exact int32 block
// dots (signed by signed: no correction to add) that the VNNI kernel builds with vpdpbusd plus its
// correction. The same cvt + mul + fma per row (and fma of the min) then scales them into float
// accumulators, block after block, so both kernels give the same bits.
//
// A step is 16 weight rows times 16 tokens over every block, its results accumulated in vector
// registers. Blocks alternate between two sets of tiles, so one block's tiles load and multiply while the
// other set's dots are stored, and each block's dots are scaled while the next blocks multiply: the
// vector units and the tiles work at once. Scaling (three vector instructions per 16 dots) and the tile
// stores take more of the time than the products themselves (docs/performance.md).
//
// Tiles take only batches of kMinTokens<W> and more: below, the VNNI kernel measured faster (how much
// shorter depends on the weight type, below). The operating system must grant a process the tile
// registers before it uses them; a program that calls this kernel without the kernel-set selection
// (which asks first) would fault, so the kernel asks too, once, and runs the VNNI kernel where refused.
#if FORGE_HAVE_AMX
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "forge/cpu/dispatch/cpu_features.hpp"

namespace forge::cpu::amx {

inline constexpr int kTileRows = 16;  // weight rows per tile: the most a tile register holds
// The shortest batch the tiles take. Whole prefills of 64 and 128 tokens ran faster on them from 1 to 16
// threads with Q8_0, Q4_0 and Q4_K_M files; Q6_K's 16-value blocks were no faster from 4 threads on, and a
// Q4_K_M file whose short rows fall back to Q5_0 slower at 1 thread, so those two wait for longer batches
// (docs/performance.md).
template <DType W>
inline constexpr int kMinTokens = W == DType::Q6_K || W == DType::Q5_0 ? 192 : 64;

inline bool tiles_granted() {
    static const bool granted = amx_granted();
    return granted;
}

// Whether a batch of `tokens` goes to the tiles.
template <DType W>
inline bool takes(int tokens) { return tokens >= kMinTokens<W> && tiles_granted(); }

// For blocks of V values, two sets of tiles, s = 0 and 1: tile s the int32 block dots [16 rows][16
// tokens]; tile 2 + s 16 weight rows x V signed codes; tile 4 + s one token group's block, V / 4 rows of
// 16 x 4 bytes.
template <int V>
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, V, V, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, V / 4, V / 4};
};

// A step: 16 weight rows of type W times one group of 16 tokens over every block, the results
// accumulated in registers. Rows are unpacked block by block: block b's 16 rows of V signed codes are
// contiguous, as are its 16 scales (and mins).
template <DType W>
struct Step {
    static constexpr int V = unpack::Format<W>::kValues;
    static constexpr bool kMins = unpack::Format<W>::kMins;
    static constexpr std::size_t kBlockCodes = std::size_t(kTileRows) * V;

    // Block b's product on tile set S. GCC's tile intrinsics take tile numbers as literal text.
    template <int S>
    static void multiply(const std::int8_t* codes, const Q8Lanes& x, int g, int b) {
        const std::int8_t* a = codes + std::size_t(b) * kBlockCodes;
        if constexpr (S == 0) {
            _tile_loadd(2, a, V);
            _tile_loadd(4, x.codes(g, b), 64);
            _tile_zero(0);
            _tile_dpbssd(0, 2, 4);
        } else {
            _tile_loadd(3, a, V);
            _tile_loadd(5, x.codes(g, b), 64);
            _tile_zero(1);
            _tile_dpbssd(1, 3, 5);
        }
    }
    // Tile set S's dots to dots[16 rows][16 tokens].
    template <int S>
    static void store(std::int32_t* dots) {
        if constexpr (S == 0) _tile_stored(0, dots, 64);
        else _tile_stored(1, dots, 64);
    }
    // Block b's stored dots scaled into acc[row] as the VNNI kernel scales its own.
    static void scale(const std::int32_t* dots, const float* scales, const float* mins, const Q8Lanes& x, int g, int b, __m512 (&acc)[kTileRows]) {
        const float* s = scales + std::size_t(b) * kTileRows;
        const __m512 dx = _mm512_loadu_ps(x.d(g, b));
        FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) acc[i] = vnni::add_scaled_block(acc[i], _mm512_load_si512(dots + 16 * i), s[i], dx);
        if constexpr (kMins) {
            const float* m = mins + std::size_t(b) * kTileRows;
            const __m512 sums = _mm512_loadu_ps(x.sums(g, b));
            FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) acc[i] = vnni::add_block_min(acc[i], sums, m[i]);
        }
    }
    // The step for token group g, its results to out[row][16 tokens]. Block b multiplies on tile set
    // b % 2 while the other set stores block b - 1's dots, which are scaled one block later: no tile
    // waits on the store of the block just before, and no load on a tile store just issued.
    static void run(const std::int8_t* codes, const float* scales, const float* mins, const Q8Lanes& x, int g, float (&out)[kTileRows][16]) {
        alignas(64) std::int32_t dots[2][kTileRows * 16];
        __m512 acc[kTileRows];
        FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) acc[i] = _mm512_setzero_ps();
        const int blocks = x.blocks();
        multiply<0>(codes, x, g, 0);
        for (int b = 1; b < blocks; ++b) {
            if (b & 1) {
                multiply<1>(codes, x, g, b);
                store<0>(dots[0]);
            } else {
                multiply<0>(codes, x, g, b);
                store<1>(dots[1]);
            }
            if (b >= 2) scale(dots[b & 1], scales, mins, x, g, b - 2, acc);
        }
        if ((blocks - 1) & 1) store<1>(dots[1]);
        else store<0>(dots[0]);
        if (blocks >= 2) scale(dots[blocks & 1], scales, mins, x, g, blocks - 2, acc);
        scale(dots[(blocks - 1) & 1], scales, mins, x, g, blocks - 1, acc);
        FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) _mm512_store_ps(out[i], acc[i]);
    }
};

// Rows [r, r + 16) unpacked into codes, scales and mins, times every token of x into y.
template <DType W>
void row_tile(const WeightView& w, const Q8Lanes& x, int r, std::int8_t* codes, float* scales, float* mins, float* y, std::size_t y_stride) {
    constexpr int R = kTileRows, V = Step<W>::V;
    const int blocks = x.blocks();
    for (int i = 0; i < R; ++i)
        unpack::row<W, true>(w.row(r + i), blocks, reinterpret_cast<std::uint8_t*>(codes) + std::size_t(i) * V, Step<W>::kBlockCodes, scales + i,
                             Step<W>::kMins ? mins + i : nullptr, std::size_t(R));
    alignas(64) float out[R][16];
    for (int g = 0; g < x.groups(); ++g) {
        Step<W>::run(codes, scales, mins, x, g, out);
        const int t0 = g * Q8Lanes::kLanes, nt = std::min(Q8Lanes::kLanes, x.tokens() - t0);
        float* yt = y + std::size_t(t0) * y_stride + std::size_t(r);
        if (nt == Q8Lanes::kLanes) {
            for (int i = 0; i < R; i += 4) vnni::store_tokens(out[i], out[i + 1], out[i + 2], out[i + 3], yt + i, y_stride);
        } else {
            for (int l = 0; l < nt; ++l)
                for (int i = 0; i < R; ++i) yt[std::size_t(l) * y_stride + std::size_t(i)] = out[i][l];
        }
    }
}

// Rows [r0, r1) times every token of x on the tiles, the tile registers granted: whole row tiles, then
// the rows past the last (fewer than 16) by the VNNI kernel.
template <DType W>
void tile_rows(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
    const std::size_t blocks = std::size_t(x.blocks());
    thread_local std::vector<std::int8_t> codes;
    thread_local std::vector<float> scales, mins;
    codes.resize(std::max(codes.size(), blocks * Step<W>::kBlockCodes));
    scales.resize(std::max(scales.size(), blocks * std::size_t(kTileRows)));
    if constexpr (Step<W>::kMins) mins.resize(std::max(mins.size(), blocks * std::size_t(kTileRows)));
    const TileConfig<Step<W>::V> config;
    _tile_loadconfig(&config);
    int r = r0;
    for (; r + kTileRows <= r1; r += kTileRows) row_tile<W>(w, x, r, codes.data(), scales.data(), mins.data(), y, y_stride);
    _tile_release();
    if (r < r1) vnni::by_lane<W>(w, x, r, r1, y, y_stride);
}

// Rows [r0, r1) times every token of a by-lane input: on the tiles where the batch is long enough and
// the tiles are granted, else by the VNNI kernel.
template <DType W>
void by_tile(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
    if (!takes<W>(x.tokens())) return vnni::by_lane<W>(w, x, r0, r1, y, y_stride);
    tile_rows<W>(w, x, r0, r1, y, y_stride);
}

}  // namespace forge::cpu::amx
#endif
