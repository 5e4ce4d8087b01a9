#pragma once
// The instruction set a translation unit's target flags compile forge's fast kernels for (forge builds
// its own targets with -march=native unless FORGE_NATIVE=OFF; a downstream project's flags decide for
// it). That is the program's own kernel set; sets for other instruction sets may be compiled apart and
// chosen at run time (cpu/dispatch/). The portable kernels are always compiled too.
#include <string_view>

namespace forge::cpu::isa {

struct Portable {
    static constexpr std::string_view name = "portable";
};
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__F16C__) && defined(__FMA__) && defined(__BMI2__)
#define FORGE_HAVE_AVX512 1
// With AMX-INT8 too (Sapphire Rapids and later), the same kernels but for the batch GEMM's tiles.
#if (defined(__AMX_TILE__) && defined(__AMX_INT8__)) || (defined(__AMXTILE__) && defined(__AMXINT8__))  // GCC's names, Clang's
#define FORGE_HAVE_AMX 1
#endif
struct Avx512 {
#if FORGE_HAVE_AMX
    static constexpr std::string_view name = "avx512-amx";
#else
    static constexpr std::string_view name = "avx512-vnni";
#endif
};
using Native = Avx512;
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define FORGE_HAVE_AVX2 1
struct Avx2 {
    static constexpr std::string_view name = "avx2";
};
using Native = Avx2;
#elif defined(__ARM_NEON) && defined(__ARM_FEATURE_DOTPROD) && defined(__aarch64__)
#define FORGE_HAVE_NEON 1
struct Neon {
    static constexpr std::string_view name = "neon-dotprod";
};
using Native = Neon;
#else
using Native = Portable;
#endif

}  // namespace forge::cpu::isa
