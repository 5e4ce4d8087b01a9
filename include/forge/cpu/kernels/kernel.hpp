#pragma once
// What a GEMM micro-kernel is: for one instruction set and one weight type, how to load a step of a
// weight row and of an activation row and multiply-accumulate them. The tiled driver (gemm.hpp) is
// written once against this interface; each instruction set only supplies these few operations.
//
//   kStep, kRows, kTokens      values per step; the tile shape (weight rows x tokens) the driver uses
//   Input                      FloatRows, or Q8Rows with `static constexpr Q8Layout kLayout`
//   steps(cols)                steps per row (the last may be partial: loads zero-fill it)
//   zero(), load_w(row, s, cols), load_x(input, t, s), madd(acc, w, x), reduce(acc) -> float
//
// or, in place of the step operations, its own loop over whole rows: static gemm_rows<Cols>(w, in, r0,
// r1, y, y_stride) (AVX-512 Q4_0, whose scales are converted ahead of the steps that use them), Cols
// being the row length when the caller knows it at compile time, else 0. A kernel whose best tile
// depends on the batch says so with static row_grain(tokens): the rows each thread's share is a
// multiple of (else kRows).
//
// Every output is one accumulator fed the same steps in the same order whatever the tile shape, so a
// token's result does not depend on how many tokens share its tile.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "forge/core/dtype.hpp"
#include "forge/cpu/kernels/q8_rows.hpp"
#include "forge/cpu/simd/isa.hpp"

// Before a loop over a tile's registers (rows, tokens: compile-time counts). Its accumulator arrays
// stay in registers only if the loop is unrolled, which GCC's -O2 does not do on its own; a downstream
// -O2 build (CMake's RelWithDebInfo) measured 0.55x prefill and 0.7x decode of -O3 without it. Not under
// AddressSanitizer: unrolling changes no result, and it doubled the instrumented build's compile time.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORGE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FORGE_ASAN)
#define FORGE_UNROLL
#else
#define FORGE_UNROLL _Pragma("GCC unroll 16")
#endif

namespace forge::cpu {

// Decode's weight rows are fetched in software at least this far ahead in each sequential stream: less
// does not cover the memory latency on short rows, and further ahead was slower on long ones (both
// measured in docs/performance.md).
inline constexpr std::size_t kPrefetchBytes = 2048;

// How far ahead a stream that moves on `advance` bytes from one tile to the next is fetched: whole tiles,
// at least kPrefetchBytes. A tile of adjacent rows is one stream; a tile that takes one row of each
// quarter reads four, each moving on one row.
inline std::size_t prefetch_distance(std::size_t advance) { return (kPrefetchBytes + advance - 1) / advance * advance; }

// Float activations: `tokens` rows of `cols` floats, `stride` floats apart.
struct FloatRows {
    const float* x = nullptr;
    int n = 0;
    int stride = 0;
    int cols = 0;
    int tokens() const { return n; }
    const float* row(int t) const { return x + std::size_t(t) * std::size_t(stride); }
};

// Kernel<Isa, W>: the micro-kernel for weights of type W; undefined where none exists.
template <class Isa, DType W>
struct Kernel;

// BatchKernel<Isa, W>: where one exists, a kernel with its own loop (static gemm_rows over whole rows)
// that beats the micro-kernel's tiles for batches of at least kMinTokens tokens.
template <class Isa, DType W>
struct BatchKernel;

template <class K>
concept QuantizedKernel = requires { K::kLayout; };

// A block's f16 scale, read without assuming alignment.
inline std::uint16_t load_u16(const std::byte* p) {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

}  // namespace forge::cpu
