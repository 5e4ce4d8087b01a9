// f16 and bf16 conversions: exhaustive over every 16-bit pattern; f32 -> 16-bit rounding checked on every
// tie between neighbouring 16-bit values and on millions of random f32 patterns, against the CPU's own
// F16C conversion and against a reference rounding computed exactly in double arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define FORGE_TEST_F16C 1
#endif

#include "forge/core/half.hpp"

namespace {

using forge::bf16_to_f32;
using forge::f16_to_f32;
using forge::f32_to_bf16;
using forge::f32_to_f16;

// Usable in constant expressions, and right there.
static_assert(f32_to_f16(1.0f) == 0x3c00 && f32_to_f16(-2.0f) == 0xc000);
static_assert(f32_to_f16(65504.0f) == 0x7bff);           // the largest finite f16
static_assert(f32_to_f16(65520.0f) == 0x7c00);           // halfway to 65536: the even neighbour is infinity
static_assert(f32_to_f16(65519.99f) == 0x7bff);
static_assert(f32_to_f16(0x1p-25f) == 0x0000);           // half the smallest subnormal ties to zero (even)
static_assert(f32_to_f16(0x1.8p-24f) == 0x0002);         // 1.5 smallest subnormals ties up to 2 (even)
static_assert(f32_to_f16(-0.0f) == 0x8000);
static_assert(f16_to_f32(0x0001) == 0x1p-24f);
static_assert(f16_to_f32(0x03ff) == 0x1.ff8p-15f);       // the largest subnormal
static_assert(f16_to_f32(0x2e66) == 0x1.998p-4f);        // 0.1 as f16
static_assert(forge::round_f16(0.1f) == 0x1.998p-4f);
static_assert(f32_to_bf16(1.0f) == 0x3f80 && bf16_to_f32(0x4049) == 3.140625f);
static_assert(f32_to_bf16(0x1.01p0f) == 0x3f80);         // 1 + 2^-8 ties down to the even 1.0
static_assert(f32_to_bf16(0x1.03p0f) == 0x3f82);         // 1 + 3 * 2^-8 ties up to the even neighbour

// A binary16-like format: `mant` stored mantissa bits, exponent bias `bias`, 1 sign bit on top.
struct Format {
    int mant;
    int bias;
    std::uint16_t inf() const { return std::uint16_t((2 * bias + 1) << mant); }
    bool is_nan(std::uint16_t h) const { return (h & inf()) == inf() && (h & ((1u << mant) - 1)) != 0; }
};
constexpr Format kF16{10, 15}, kBF16{7, 127};

// The value of a 16-bit pattern from the format's definition, in double; an all-ones exponent is read as
// if it were one more binade (giving the value just past the largest finite one).
double value_of(std::uint16_t h, Format fmt) {
    const int exp = (h & 0x7fff) >> fmt.mant;
    const int mant = h & ((1 << fmt.mant) - 1);
    const double magnitude = exp == 0 ? std::ldexp(mant, 1 - fmt.bias - fmt.mant)
                                      : std::ldexp(mant + (1 << fmt.mant), exp - fmt.bias - fmt.mant);
    return (h & 0x8000) ? -magnitude : magnitude;
}

// Round-to-nearest-even of an f32 to the format, computed exactly: every f32 and every quantum (a power
// of two) is a double, so a / quantum is exact and nearbyint breaks ties to even. A NaN gives a NaN of
// the same sign.
std::uint16_t reference_round(float x, Format fmt) {
    const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    const double a = std::fabs(double(x));
    const int emin = 1 - fmt.bias;
    if (std::isnan(a)) return sign | fmt.inf() | 1;
    if (std::isinf(a)) return sign | fmt.inf();
    int e = 0;
    std::frexp(a, &e);  // a = m * 2^e with m in [0.5, 1)
    const int lead = a == 0 ? emin : std::max(e - 1, emin);
    const double r = std::nearbyint(std::ldexp(a, fmt.mant - lead)) * std::ldexp(1.0, lead - fmt.mant);
    if (r > value_of(std::uint16_t(fmt.inf() - 1), fmt)) return sign | fmt.inf();
    if (r < std::ldexp(1.0, emin)) return sign | std::uint16_t(std::ldexp(r, fmt.mant - emin));
    std::frexp(r, &e);
    return sign | std::uint16_t((e - 1 + fmt.bias) << fmt.mant) |
           std::uint16_t(std::ldexp(r, fmt.mant - (e - 1)) - std::ldexp(1.0, fmt.mant));
}

// Equal patterns, or both NaN with the same sign: which NaN a conversion returns is not part of the contract.
testing::AssertionResult same(std::uint16_t got, std::uint16_t want, float input, Format fmt) {
    if (got == want || (fmt.is_nan(got) && fmt.is_nan(want) && (got & 0x8000) == (want & 0x8000)))
        return testing::AssertionSuccess();
    return testing::AssertionFailure() << std::hex << "input 0x" << std::bit_cast<std::uint32_t>(input) << " ("
                                       << input << ") gave 0x" << got << ", expected 0x" << want;
}

// Inputs that probe rounding: for every finite non-negative 16-bit value, the value itself, the exact
// midpoint to its successor (12 significant bits at most, so an f32) and the f32s either side of that
// midpoint; both signs; plus specials and a few hand-picked edges.
std::vector<float> rounding_probes(Format fmt) {
    std::vector<float> out;
    for (std::uint32_t h = 0; h < fmt.inf(); ++h) {
        const auto x = float(value_of(std::uint16_t(h), fmt));
        const auto mid = float((value_of(std::uint16_t(h), fmt) + value_of(std::uint16_t(h + 1), fmt)) / 2);
        for (const float p : {x, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
            out.push_back(p);
            out.push_back(-p);
        }
    }
    for (const float p : {INFINITY, -INFINITY, NAN, -NAN, std::bit_cast<float>(0x7f800001u),
                          std::bit_cast<float>(0xffbfffffu), std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(), 1e-30f, 1e30f})
        out.push_back(p);
    return out;
}

// Uniform 32-bit patterns (every exponent, NaNs included), then patterns whose exponent lies in or next to
// `fmt`'s range, where the rounding is not just to zero or infinity.
std::vector<float> random_patterns(Format fmt, std::size_t uniform, std::size_t in_range) {
    std::mt19937 rng(0x5eed);
    std::vector<float> out;
    out.reserve(uniform + in_range);
    for (std::size_t i = 0; i < uniform; ++i) out.push_back(std::bit_cast<float>(std::uint32_t(rng())));
    const int lo = 127 - fmt.bias - fmt.mant - 2, hi = 127 + fmt.bias + 1;
    std::uniform_int_distribution<int> exp(std::max(lo, 0), std::min(hi, 254));
    for (std::size_t i = 0; i < in_range; ++i)
        out.push_back(std::bit_cast<float>((std::uint32_t(rng()) & 0x807fffffu) | (std::uint32_t(exp(rng)) << 23)));
    return out;
}

#ifdef FORGE_TEST_F16C
__attribute__((target("f16c"))) std::uint16_t hardware_f32_to_f16(float x) {
    return static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hardware_f16_to_f32(std::uint16_t h) { return _cvtsh_ss(h); }
// CPUID rather than __builtin_cpu_supports, which clang 14 does not know "f16c" for.
bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

TEST(F16, EveryPatternDecodesToItsDefinedValue) {
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = std::uint16_t(i);
        const float f = f16_to_f32(h);
        if (kF16.is_nan(h)) {
            EXPECT_TRUE(std::isnan(f)) << std::hex << i;
            EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
        } else if ((h & 0x7fff) == kF16.inf()) {
            EXPECT_EQ(f, (h & 0x8000) ? -INFINITY : INFINITY) << std::hex << i;
        } else {
            EXPECT_EQ(std::bit_cast<std::uint32_t>(f), std::bit_cast<std::uint32_t>(float(value_of(h, kF16))))
                << std::hex << i;  // bit compare: keeps -0 apart from +0
        }
    }
}

TEST(F16, EveryPatternRoundTrips) {
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = std::uint16_t(i);
        const std::uint16_t back = f32_to_f16(f16_to_f32(h));
        if (kF16.is_nan(h))
            EXPECT_TRUE(kF16.is_nan(back) && (back & 0x8000) == (h & 0x8000)) << std::hex << i << " -> " << back;
        else
            EXPECT_EQ(back, h) << std::hex << i;
    }
}

TEST(F16, EncodesHandPickedEdges) {
    struct Case {
        float in;
        std::uint16_t out;
    };
    for (const auto& [in, out] : std::initializer_list<Case>{
             {0.0f, 0x0000}, {-0.0f, 0x8000}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000},       // tie to even: 0
             {0x1.000002p-25f, 0x0001}, {0x1.8p-24f, 0x0002}, {0x1.4p-23f, 0x0002},           // 2.5 quanta: 2
             {0x1p-14f, 0x0400}, {0x1.ffcp-15f, 0x0400},                                        // rounds up to normal
             {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x3p-11f, 0x3c02}, {2049.0f, 0x6800}, {2051.0f, 0x6802},
             {65504.0f, 0x7bff}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00}, {-65520.0f, 0xfc00}, {65536.0f, 0x7c00},
             {1e10f, 0x7c00}, {INFINITY, 0x7c00}, {-INFINITY, 0xfc00}, {1e-10f, 0x0000}, {-1e-10f, 0x8000}}) {
        EXPECT_EQ(f32_to_f16(in), out) << in;
    }
    EXPECT_TRUE(kF16.is_nan(f32_to_f16(NAN)));
    EXPECT_EQ(f32_to_f16(-NAN) & 0x8000, 0x8000);
    EXPECT_TRUE(kF16.is_nan(f32_to_f16(std::bit_cast<float>(0x7f800001u))));  // a payload f16 cannot hold
}

#ifdef FORGE_TEST_F16C
TEST(F16, DecodingMatchesTheHardware) {
    ASSERT_TRUE(cpu_has_f16c()) << "the f16 tests compare against F16C, which this x86 CPU lacks";
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = std::uint16_t(i);
        const float ours = f16_to_f32(h), cpu = hardware_f16_to_f32(h);
        if (kF16.is_nan(h))
            EXPECT_TRUE(std::isnan(ours) && std::isnan(cpu)) << std::hex << i;
        else
            EXPECT_EQ(std::bit_cast<std::uint32_t>(ours), std::bit_cast<std::uint32_t>(cpu)) << std::hex << i;
    }
}

// The hardware is the authority for f16; agreeing with it on the same inputs also validates the double
// reference that the bf16 test relies on.
TEST(F16, EncodingMatchesTheHardwareAndTheReference) {
    ASSERT_TRUE(cpu_has_f16c()) << "the f16 tests compare against F16C, which this x86 CPU lacks";
    std::size_t mismatches = 0;
    auto check = [&](const std::vector<float>& inputs) {
        for (const float x : inputs) {
            const std::uint16_t cpu = hardware_f32_to_f16(x);
            if (const auto r = same(f32_to_f16(x), cpu, x, kF16); !r && ++mismatches <= 10)
                ADD_FAILURE() << "forge: " << r.message();
            if (const auto r = same(reference_round(x, kF16), cpu, x, kF16); !r && ++mismatches <= 10)
                ADD_FAILURE() << "reference: " << r.message();
        }
    };
    check(rounding_probes(kF16));
    check(random_patterns(kF16, std::size_t(1) << 22, std::size_t(1) << 21));
    EXPECT_EQ(mismatches, 0u);
}
#endif

TEST(BF16, EveryPatternDecodesAndRoundTrips) {
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto b = std::uint16_t(i);
        const float f = bf16_to_f32(b);
        EXPECT_EQ(std::bit_cast<std::uint32_t>(f), i << 16) << std::hex << i;  // bf16 is the top half of an f32
        if (kBF16.is_nan(b))
            EXPECT_TRUE(kBF16.is_nan(f32_to_bf16(f)) && (f32_to_bf16(f) & 0x8000) == (b & 0x8000)) << std::hex << i;
        else
            EXPECT_EQ(f32_to_bf16(f), b) << std::hex << i;
        if (!kBF16.is_nan(b) && (b & 0x7fff) != kBF16.inf()) {
            EXPECT_EQ(double(f), value_of(b, kBF16)) << std::hex << i;
        }
    }
}

TEST(BF16, EncodingMatchesTheReference) {
    std::size_t mismatches = 0;
    auto check = [&](const std::vector<float>& inputs) {
        for (const float x : inputs) {
            if (const auto r = same(f32_to_bf16(x), reference_round(x, kBF16), x, kBF16); !r && ++mismatches <= 10)
                ADD_FAILURE() << r.message();
        }
    };
    check(rounding_probes(kBF16));
    check(random_patterns(kBF16, std::size_t(1) << 22, std::size_t(1) << 21));
    EXPECT_EQ(mismatches, 0u);
    // Rounding past the largest finite bf16 gives infinity; f32 subnormals round like any other value.
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), kBF16.inf());
    EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7f7f7fffu)), 0x7f7f);
    EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // subnormal tie, to even
    EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x00008000u)), 0x0000);
}

}  // namespace
