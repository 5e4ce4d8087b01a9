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
// A step is one block of 32 rows x 32 tokens: two weight tiles, two token tiles, four products. Block
// b's products are scaled while the tiles multiply block b + 2's, so the vector units and the tiles work
// at once. Scaling (three vector instructions per 16 dots) and the tile stores take more of the time than
// the products themselves (docs/performance.md).
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

// For blocks of V values: tiles 0-3, int32 block dots [16 rows][16 tokens], product (row tile i, token
// group j) in tile 2i + j; 4 and 5: two row tiles' 16 rows x V signed codes; 6 and 7: two token groups'
// block, V / 4 rows of 16 x 4 bytes.
template <int V>
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, 64, 64, V, V, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, V / 4, V / 4};
};

// A step's rows: RT row tiles of 16 (1 or 2) times G token groups (1 or 2), for weights of type W. Rows
// are unpacked block by block: block b's 16 * RT rows of V signed codes are contiguous, as are its 16 * RT
// scales (and mins).
template <DType W, int RT, int G>
struct Step {
    static constexpr int kRows = RT * kTileRows, V = unpack::Format<W>::kValues;
    static constexpr bool kMins = unpack::Format<W>::kMins;
    static constexpr std::size_t kBlockCodes = std::size_t(kRows) * V;

    // Block b's products into tiles 0-3. GCC's tile intrinsics take tile numbers as literal text.
    static void multiply(const std::int8_t* codes, const Q8Lanes& x, int g, int b) {
        const std::int8_t* a = codes + std::size_t(b) * kBlockCodes;
        _tile_loadd(4, a, V);
        _tile_loadd(6, x.codes(g, b), 64);
        if constexpr (RT == 2) _tile_loadd(5, a + kTileRows * V, V);
        if constexpr (G == 2) _tile_loadd(7, x.codes(g + 1, b), 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        if constexpr (G == 2) {
            _tile_zero(1);
            _tile_dpbssd(1, 4, 7);
        }
        if constexpr (RT == 2) {
            _tile_zero(2);
            _tile_dpbssd(2, 5, 6);
        }
        if constexpr (RT == 2 && G == 2) {
            _tile_zero(3);
            _tile_dpbssd(3, 5, 7);
        }
    }
    // Tiles 0-3 to dots[2i + j][16 rows][16 tokens].
    static void store(std::int32_t* dots) {
        _tile_stored(0, dots, 64);
        if constexpr (G == 2) _tile_stored(1, dots + 256, 64);
        if constexpr (RT == 2) _tile_stored(2, dots + 512, 64);
        if constexpr (RT == 2 && G == 2) _tile_stored(3, dots + 768, 64);
    }
    // Block b's stored dots scaled into acc[row][group][16 tokens] as the VNNI kernel scales its own.
    static void scale(const std::int32_t* dots, const float* scales, const float* mins, const Q8Lanes& x, int g, int b, float* acc) {
        const float* s = scales + std::size_t(b) * kRows;
        const float* m = kMins ? mins + std::size_t(b) * kRows : nullptr;
        FORGE_UNROLL for (int j = 0; j < G; ++j) {
            const __m512 dx = _mm512_loadu_ps(x.d(g + j, b));
            const __m512 sums = kMins ? _mm512_loadu_ps(x.sums(g + j, b)) : _mm512_setzero_ps();
            FORGE_UNROLL for (int t = 0; t < RT; ++t)
                FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) {
                    const int row = t * kTileRows + i;
                    float* a = acc + (std::size_t(row) * 2 + std::size_t(j)) * 16;
                    const __m512i dot = _mm512_load_si512(dots + (2 * t + j) * 256 + 16 * i);
                    __m512 sum = vnni::add_scaled_block(_mm512_load_ps(a), dot, s[row], dx);
                    if constexpr (kMins) sum = vnni::add_block_min(sum, sums, m[row]);
                    _mm512_store_ps(a, sum);
                }
        }
    }
    // The step for token groups g .. g + G - 1, its results to acc. Block b's products are stored while
    // block b + 1's multiply, and scaled one block later, so no load waits on a tile store just issued.
    static void run(const std::int8_t* codes, const float* scales, const float* mins, const Q8Lanes& x, int g, float* acc) {
        alignas(64) std::int32_t dots[2][4 * 256];
        std::fill_n(acc, std::size_t(kRows) * 2 * 16, 0.0f);
        const int blocks = x.blocks();
        multiply(codes, x, g, 0);
        for (int b = 1; b < blocks; ++b) {
            store(dots[(b - 1) & 1]);
            multiply(codes, x, g, b);
            if (b >= 2) scale(dots[b & 1], scales, mins, x, g, b - 2, acc);
        }
        store(dots[(blocks - 1) & 1]);
        if (blocks >= 2) scale(dots[blocks & 1], scales, mins, x, g, blocks - 2, acc);
        scale(dots[(blocks - 1) & 1], scales, mins, x, g, blocks - 1, acc);
    }
};

// Rows [r, r + 16 * RT) unpacked into codes, scales and mins, times every token of x into y.
template <DType W, int RT>
void row_tiles(const WeightView& w, const Q8Lanes& x, int r, std::int8_t* codes, float* scales, float* mins, float* y, std::size_t y_stride) {
    constexpr int R = RT * kTileRows, V = unpack::Format<W>::kValues;
    const int blocks = x.blocks();
    for (int i = 0; i < R; ++i)
        unpack::row<W, true>(w.row(r + i), blocks, reinterpret_cast<std::uint8_t*>(codes) + std::size_t(i) * V, Step<W, RT, 1>::kBlockCodes,
                             scales + i, unpack::Format<W>::kMins ? mins + i : nullptr, std::size_t(R));
    alignas(64) float acc[R][2][16];
    for (int g = 0; g < x.groups(); g += 2) {
        const int ng = std::min(2, x.groups() - g);
        if (ng == 2) Step<W, RT, 2>::run(codes, scales, mins, x, g, &acc[0][0][0]);
        else Step<W, RT, 1>::run(codes, scales, mins, x, g, &acc[0][0][0]);
        for (int j = 0; j < ng; ++j) {
            const int t0 = (g + j) * Q8Lanes::kLanes, nt = std::min(Q8Lanes::kLanes, x.tokens() - t0);
            float* yt = y + std::size_t(t0) * y_stride + std::size_t(r);
            if (nt == Q8Lanes::kLanes) {
                for (int i = 0; i < R; i += 4) vnni::store_tokens(acc[i][j], acc[i + 1][j], acc[i + 2][j], acc[i + 3][j], yt + i, y_stride);
            } else {
                for (int l = 0; l < nt; ++l)
                    for (int i = 0; i < R; ++i) yt[std::size_t(l) * y_stride + std::size_t(i)] = acc[i][j][l];
            }
        }
    }
}

// Rows [r0, r1) times every token of x on the tiles, the tile registers granted: pairs of row tiles,
// then one, then the rows past the last whole tile (fewer than 16) by the VNNI kernel.
template <DType W>
void tile_rows(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
    using Pair = Step<W, 2, 1>;
    const std::size_t blocks = std::size_t(x.blocks());
    thread_local std::vector<std::int8_t> codes;
    thread_local std::vector<float> scales, mins;
    codes.resize(std::max(codes.size(), blocks * Pair::kBlockCodes));
    scales.resize(std::max(scales.size(), blocks * std::size_t(Pair::kRows)));
    if constexpr (Pair::kMins) mins.resize(std::max(mins.size(), blocks * std::size_t(Pair::kRows)));
    const TileConfig<Pair::V> config;
    _tile_loadconfig(&config);
    int r = r0;
    for (; r + 2 * kTileRows <= r1; r += 2 * kTileRows) row_tiles<W, 2>(w, x, r, codes.data(), scales.data(), mins.data(), y, y_stride);
    if (r + kTileRows <= r1) {
        row_tiles<W, 1>(w, x, r, codes.data(), scales.data(), mins.data(), y, y_stride);
        r += kTileRows;
    }
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
