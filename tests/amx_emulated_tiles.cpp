// The AMX batch kernel (kernels_avx512_amx.hpp) run with its tile instructions emulated, on any CPU with
// AVX-512 VNNI: built with the AMX flags (tests/CMakeLists.txt), this program replaces GCC's and Clang's
// tile intrinsics by C++ that does what Intel's manual says they do, then checks the kernel's results
// against the VNNI batch kernel's, bit for bit: its tile shapes, block layout, pipelined steps and edge
// rows are tested where CI runs, not only on a CPU with AMX (KernelSets.TheAmxTilesComputeTheVnniKernelsBits
// runs the real tiles there). Prints a line per case; exits 1 when a result differs or a tile is misused.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "forge/cpu/simd/x86.hpp"  // <immintrin.h>, whose tile intrinsics are replaced below

namespace emulated {

// A tile register: up to 16 rows of up to 64 bytes, its shape set by the last configuration loaded.
struct Tile {
    int rows = 0, colsb = 0;
    unsigned char data[16][64] = {};
};
inline Tile tiles[8];
inline bool configured = false;

[[noreturn]] inline void misuse(const char* what, int t) {
    std::printf("tile %d misused: %s\n", t, what);
    std::exit(1);
}

// The 64-byte configuration: palette 1, bytes 16-31 each tile's bytes per row, 48-55 its rows.
inline void loadconfig(const void* config) {
    const auto* c = static_cast<const unsigned char*>(config);
    if (c[0] != 1) misuse("palette is not 1", -1);
    for (int t = 0; t < 8; ++t) {
        std::uint16_t colsb;
        std::memcpy(&colsb, c + 16 + 2 * t, 2);
        tiles[t].rows = c[48 + t];
        tiles[t].colsb = colsb;
        if (tiles[t].rows > 16 || tiles[t].colsb > 64 || tiles[t].colsb % 4 != 0) misuse("configured beyond 16 rows of 64 bytes", t);
    }
    configured = true;
}
inline void release() { configured = false; }
inline void check(int t) {
    if (!configured) misuse("used without a configuration", t);
    if (tiles[t].rows == 0) misuse("used but configured empty", t);
}
inline void loadd(int t, const void* base, long stride) {
    check(t);
    for (int r = 0; r < tiles[t].rows; ++r) std::memcpy(tiles[t].data[r], static_cast<const char*>(base) + r * stride, std::size_t(tiles[t].colsb));
}
inline void stored(int t, void* base, long stride) {
    check(t);
    for (int r = 0; r < tiles[t].rows; ++r) std::memcpy(static_cast<char*>(base) + r * stride, tiles[t].data[r], std::size_t(tiles[t].colsb));
}
inline void zero(int t) {
    check(t);
    std::memset(tiles[t].data, 0, sizeof tiles[t].data);
}
// tdpbssd: C[m][n] += sum over k < K, i < 4 of A[m][4k + i] * B[k][4n + i], all bytes signed; A is M x 4K
// bytes, B K x 4N, C M x N int32.
inline void dpbssd(int c, int a, int b) {
    check(c), check(a), check(b);
    const int M = tiles[c].rows, N = tiles[c].colsb / 4, K = tiles[a].colsb / 4;
    if (tiles[a].rows != M || tiles[b].rows != K || tiles[b].colsb != tiles[c].colsb) misuse("shapes do not multiply", c);
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            std::int32_t acc;
            std::memcpy(&acc, &tiles[c].data[m][4 * n], 4);
            for (int k = 0; k < K; ++k)
                for (int i = 0; i < 4; ++i)
                    acc += std::int32_t(static_cast<signed char>(tiles[a].data[m][4 * k + i])) * std::int32_t(static_cast<signed char>(tiles[b].data[k][4 * n + i]));
            std::memcpy(&tiles[c].data[m][4 * n], &acc, 4);
        }
}

}  // namespace emulated

// The compilers' tile intrinsics, replaced: the functions by name, the macros (tile numbers as literals) by macros.
#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbssd
#define _tile_loadconfig emulated::loadconfig
#define _tile_release emulated::release
#define _tile_loadd(t, base, stride) emulated::loadd(t, base, stride)
#define _tile_stored(t, base, stride) emulated::stored(t, base, stride)
#define _tile_zero(t) emulated::zero(t)
#define _tile_dpbssd(c, a, b) emulated::dpbssd(c, a, b)

#include "forge/cpu/kernels/gemm.hpp"
#include "random_gemm_case.hpp"

#if !FORGE_HAVE_AMX
#error "build this program with the AMX flags (-mamx-tile -mamx-int8) and AVX-512 VNNI's"
#endif

// Tile rows against the VNNI kernel on one random case of weight type W: prints a line, returns whether
// every result had the same bits.
template <forge::DType W>
bool same_bits(int rows, int cols, int tokens, std::mt19937& rng) {
    using namespace forge;
    const test::RandomGemmCase c = test::random_gemm_case(W, rows, cols, tokens, rng);
    cpu::Q8Lanes in;
    in.prepare(tokens, cols, cpu::unpack::Format<W>::kLayout);
    in.quantize(c.inputs.data(), cols, 0, tokens);
    std::vector<float> tiles(std::size_t(tokens) * std::size_t(rows)), lanes(tiles.size());
    cpu::amx::tile_rows<W>(c.view, in, 0, rows, tiles.data(), std::size_t(rows));
    cpu::vnni::by_lane<W>(c.view, in, 0, rows, lanes.data(), std::size_t(rows));
    std::size_t first = tiles.size();
    for (std::size_t i = 0; i < tiles.size() && first == tiles.size(); ++i)
        if (std::memcmp(&tiles[i], &lanes[i], sizeof(float)) != 0) first = i;
    std::printf("%s %d x %d, %d tokens: ", dtype_name(W).data(), rows, cols, tokens);
    if (first == tiles.size()) {
        std::printf("same bits\n");
        return true;
    }
    std::printf("token %zu row %zu differs: tiles %.9g, VNNI %.9g\n", first / std::size_t(rows), first % std::size_t(rows), double(tiles[first]),
                double(lanes[first]));
    return false;
}

int main() {
    using forge::DType;
    std::mt19937 rng(5);
    int differ = 0;
    // rows x cols, tokens: pairs of row tiles and one tile more (80, 48 rows), rows past the last tile
    // (35, 100), one and odd block counts (32, 96, 608 columns), odd and partial token groups (33, 201 tokens).
    constexpr std::array<std::array<int, 3>, 7> kShapes{{{16, 32, 192}, {100, 576, 300}, {64, 608, 512}, {35, 96, 201}, {48, 64, 33}, {80, 896, 17}, {32, 32, 16}}};
    for (const auto& [rows, cols, tokens] : kShapes) differ += !same_bits<DType::Q8_0>(rows, cols, tokens, rng);
    for (const auto& [rows, cols, tokens] : kShapes) differ += !same_bits<DType::Q4_0>(rows, cols, tokens, rng);
    for (const auto& [rows, cols, tokens] : kShapes) differ += !same_bits<DType::Q5_0>(rows, cols, tokens, rng);
    // The K-quants: one to three super-blocks (Q6_K's blocks are 16 values, with tiles to match).
    constexpr std::array<std::array<int, 3>, 4> kKShapes{{{16, 256, 192}, {100, 512, 300}, {35, 768, 201}, {48, 256, 33}}};
    for (const auto& [rows, cols, tokens] : kKShapes) differ += !same_bits<DType::Q4_K>(rows, cols, tokens, rng);
    for (const auto& [rows, cols, tokens] : kKShapes) differ += !same_bits<DType::Q5_K>(rows, cols, tokens, rng);
    for (const auto& [rows, cols, tokens] : kKShapes) differ += !same_bits<DType::Q6_K>(rows, cols, tokens, rng);
    return differ == 0 ? 0 : 1;
}
