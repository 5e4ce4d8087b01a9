#pragma once
// The AMX batch kernel for Q8_0 / Q4_0 weights (prefill on CPUs with AMX-INT8: Sapphire Rapids and
// later), the VNNI batch kernel's loop with its dot products done by tiles. Included by
// kernels_avx512_vnni.hpp, whose unpacked rows, Q8Lanes input and token stores it shares.
//
// Q8Lanes already lays out a group of 16 tokens and one 32-value block as AMX wants its second operand:
// eight 64-byte rows, row k holding codes 4k..4k+3 of each token. The first operand is 16 unpacked
// weight rows' 32 unsigned codes of the block. One tdpbusd then gives the 16 x 16 exact int32 block dots
// that the VNNI kernel builds with 128 vpdpbusd, and the same cvt + mul + fma per row scales them into
// the float accumulators, block after block, so both kernels give the same bits.
//
// Tiles take only batches of kMinTokens and more: below, the VNNI kernel was faster once four threads
// or more shared the work (docs/performance.md). The operating system must grant a process the tile
// registers before it uses them; a program that calls this kernel without the kernel-set selection
// (which asks first) would fault, so the kernel asks too, once, and runs the VNNI kernel where refused.
#if FORGE_HAVE_AMX
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "forge/cpu/dispatch/cpu_features.hpp"

namespace forge::cpu::amx {

inline constexpr int kTileRows = 16;    // weight rows per tile: the most a tile register holds
inline constexpr int kMinTokens = 192;  // between the measured 128 (VNNI faster) and 512 (tiles faster)

inline bool tiles_granted() {
    static const bool granted = amx_granted();
    return granted;
}

// Tiles 0 and 1: int32 block dots [16 rows][16 tokens]; 2 and 3: 16 rows x 32 unsigned weight codes;
// 4 and 5: a block of 16 tokens' codes, eight rows of 16 x 4 bytes. Two of each, for two blocks in flight.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {64, 64, 32, 32, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, 8, 8};
};

// Block b's int32 dots [16 rows][16 tokens] of 16 unpacked rows (`codes`, rows `row_bytes` apart) and
// token group g, into `dots`. GCC's tile intrinsics take tile numbers as literal text, so each set of
// tiles (C, A, B) has its own function, written by this macro.
#define FORGE_AMX_BLOCK_DOTS(name, C, A, B)                                                                                       \
    inline void name(const std::uint8_t* codes, std::size_t row_bytes, const Q8Lanes& x, int g, int b, std::int32_t* dots) { \
        _tile_loadd(A, codes + std::size_t(b) * 32, long(row_bytes));                                                           \
        _tile_loadd(B, x.codes(g, b), 64);                                                                                      \
        _tile_zero(C);                                                                                                          \
        _tile_dpbusd(C, A, B);                                                                                                  \
        _tile_stored(C, dots, 64);                                                                                              \
    }
FORGE_AMX_BLOCK_DOTS(block_dots_first, 0, 2, 4)
FORGE_AMX_BLOCK_DOTS(block_dots_second, 1, 3, 5)
#undef FORGE_AMX_BLOCK_DOTS

// The dots of block b, with the tokens' correction, scaled as the VNNI kernel scales them into each row's accumulator.
inline void scale_into(const std::int32_t* dots, const float* scales, int blocks, const Q8Lanes& x, int g, int b, __m512 (&acc)[kTileRows]) {
    const __m512i corr = _mm512_loadu_si512(x.corr(g, b));
    const __m512 dx = _mm512_loadu_ps(x.d(g, b));
    FORGE_UNROLL for (int i = 0; i < kTileRows; ++i) {
        const __m512i dot = _mm512_add_epi32(corr, _mm512_load_si512(dots + 16 * i));
        acc[i] = vnni::add_scaled_block(acc[i], dot, scales[std::size_t(i) * std::size_t(blocks) + std::size_t(b)], dx);
    }
}

// Rows [r0, r1) times every token of a by-lane input: whole tiles of 16 rows here, the rest of the
// rows (fewer than 16, at the end of the range) by the VNNI kernel, as are batches under kMinTokens.
template <DType W>
void by_tile(const WeightView& w, const Q8Lanes& x, int r0, int r1, float* y, std::size_t y_stride) {
    constexpr int R = kTileRows;
    if (x.tokens() < kMinTokens || !tiles_granted()) return vnni::by_lane<W>(w, x, r0, r1, y, y_stride);
    const int blocks = x.blocks();
    const std::size_t row_bytes = std::size_t(blocks) * 32;
    thread_local std::vector<std::uint8_t> codes;
    thread_local std::vector<float> scales;
    codes.resize(std::max(codes.size(), std::size_t(R) * row_bytes));
    scales.resize(std::max(scales.size(), std::size_t(R) * std::size_t(blocks)));
    alignas(64) std::int32_t dots[2][R * 16];
    alignas(64) float out[R][16];
    const TileConfig config;
    _tile_loadconfig(&config);
    int r = r0;
    for (; r + R <= r1; r += R) {
        for (int i = 0; i < R; ++i) vnni::unpack_row<W>(w.row(r + i), blocks, &codes[std::size_t(i) * row_bytes], &scales[std::size_t(i) * std::size_t(blocks)]);
        for (int g = 0; g < x.groups(); ++g) {
            __m512 acc[R];
            FORGE_UNROLL for (auto& a : acc) a = _mm512_setzero_ps();
            int b = 0;
            for (; b + 2 <= blocks; b += 2) {
                block_dots_first(codes.data(), row_bytes, x, g, b, dots[0]);
                block_dots_second(codes.data(), row_bytes, x, g, b + 1, dots[1]);
                scale_into(dots[0], scales.data(), blocks, x, g, b, acc);
                scale_into(dots[1], scales.data(), blocks, x, g, b + 1, acc);
            }
            if (b < blocks) {
                block_dots_first(codes.data(), row_bytes, x, g, b, dots[0]);
                scale_into(dots[0], scales.data(), blocks, x, g, b, acc);
            }
            FORGE_UNROLL for (int i = 0; i < R; ++i) _mm512_store_ps(out[i], acc[i]);
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
    _tile_release();
    if (r < r1) vnni::by_lane<W>(w, x, r, r1, y, y_stride);
}

}  // namespace forge::cpu::amx
#endif
