// Q8_0 and Q4_0 blocks: hand-worked blocks, error bounds on many kinds of data, agreement with the
// quantized test models, and the type-dispatched row functions. The read-only types (Q2_K, Q3_K, Q4_1):
// hand-worked blocks, and llama.cpp's K-quant files decoding to the weights they were quantized from.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "forge/gguf/reader.hpp"
#include "forge/quant/k_quants.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q4_1.hpp"
#include "forge/quant/q8_0.hpp"
#include "forge/quant/q8_1.hpp"
#include "forge/quant/row.hpp"
#include "testdata.hpp"

namespace {

using forge::BlockQ4_0;
using forge::BlockQ8_0;
using forge::DType;

constexpr int kBlock = 32;
using Block = std::array<float, kBlock>;

// Element i's code: Q8_0's signed byte, Q4_0's nibble (low nibbles hold elements 0-15, high ones 16-31).
int code_of(const BlockQ8_0& b, int i) { return b.qs[i]; }
int code_of(const BlockQ4_0& b, int i) { return i < 16 ? b.qs[i] & 15 : b.qs[i - 16] >> 4; }

template <class B>
std::vector<std::uint8_t> raw(const B& b) {
    std::vector<std::uint8_t> out(sizeof(B));
    std::memcpy(out.data(), &b, sizeof(B));
    return out;
}

// --- hand-worked blocks ---------------------------------------------------------------------------
// Q8_0: d = max|x| / 127 as f16 (stored little-endian), q = round-half-away(x / d).
// Q4_0: d = (the value of largest magnitude, first one on ties) / -8, q = min(15, trunc(x / d + 8.5)),
//       byte j = q[j] | q[j + 16] << 4.

TEST(Q8_0, HandWorkedBlockWithUnitScale) {
    Block x{};
    const float head[] = {127, -127, 2.5f, -2.5f, 0.49f, -126.6f, 64.5f, -0.5f};
    std::copy(std::begin(head), std::end(head), x.begin());
    for (int i = 8; i < kBlock; ++i) x[i] = float(i - 16);
    BlockQ8_0 b{};
    forge::quantize_row_q8_0(x.data(), &b, kBlock);
    // 127 / 127 = 1.0 is f16 0x3c00; ties round away from zero.
    std::vector<std::uint8_t> want = {0x00, 0x3c, 127, 0x81, 3, 0xfd, 0, 0x81, 65, 0xff};
    for (int i = 8; i < kBlock; ++i) want.push_back(std::uint8_t(std::int8_t(i - 16)));
    EXPECT_EQ(raw(b), want);

    Block y{};
    forge::dequantize_row_q8_0(&b, y.data(), kBlock);
    EXPECT_EQ(y[2], 3.0f);
    EXPECT_EQ(y[7], -1.0f);
    EXPECT_EQ(y[31], 15.0f);
}

TEST(Q8_0, HandWorkedBlockWithInexactScale) {
    Block x{};
    x[0] = 1.0f;
    x[1] = -0.5f;
    BlockQ8_0 b{};
    forge::quantize_row_q8_0(x.data(), &b, kBlock);
    // 1/127 = 2^-7 * 1.00787...; 0.00787 * 1024 = 8.06 rounds to mantissa 8: f16 0x2008. 1 / (1/127 as
    // f32) rounds back to exactly 127.0f, so -0.5 lands on -63.5 and rounds away from zero to -64.
    std::vector<std::uint8_t> want(sizeof(BlockQ8_0), 0);
    want[0] = 0x08, want[1] = 0x20, want[2] = 127, want[3] = std::uint8_t(-64);
    EXPECT_EQ(raw(b), want);
}

TEST(Q8_0, AllZeroBlock) {
    const Block x{};
    BlockQ8_0 b;
    std::memset(&b, 0x5a, sizeof b);
    forge::quantize_row_q8_0(x.data(), &b, kBlock);
    EXPECT_EQ(raw(b), std::vector<std::uint8_t>(sizeof(BlockQ8_0), 0));  // d = 0, and no NaN from 0/0
    Block y;
    y.fill(1.0f);
    forge::dequantize_row_q8_0(&b, y.data(), kBlock);
    EXPECT_EQ(y, Block{});
}

TEST(Q4_0, HandWorkedBlockWithNegativeExtreme) {
    Block x{};
    const float head[] = {-8, 7, 7.4f, 3.5f, -3.5f, 0, -0.6f, 0.6f};
    std::copy(std::begin(head), std::end(head), x.begin());
    x[16] = -7.5f;
    x[17] = 6.49f;
    std::fill(x.begin() + 18, x.end(), -1.0f);
    BlockQ4_0 b{};
    forge::quantize_row_q4_0(x.data(), &b, kBlock);
    // d = -8 / -8 = 1 (f16 0x3c00). Codes x + 8.5 truncated: -8 -> 0, 7 -> 15, 7.4 -> 15 (15.9), 3.5 -> 12,
    // -3.5 -> 5, 0 -> 8, -0.6 -> 7, 0.6 -> 9, zeros -> 8; high halves: -7.5 -> 1, 6.49 -> 14, -1 -> 7.
    const std::vector<std::uint8_t> want = {0x00, 0x3c, 0x10, 0xef, 0x7f, 0x7c, 0x75, 0x78, 0x77, 0x79,
                                            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78};
    EXPECT_EQ(raw(b), want);

    Block y{};
    forge::dequantize_row_q4_0(&b, y.data(), kBlock);
    const float want_y[] = {-8, 7, 7, 4, -3, 0, -1, 1};
    for (int i = 0; i < 8; ++i) EXPECT_EQ(y[i], want_y[i]) << i;
    EXPECT_EQ(y[16], -7.0f);
    EXPECT_EQ(y[17], 6.0f);
}

TEST(Q4_0, HandWorkedBlockWithPositiveExtremeAndClamp) {
    Block x{};
    const float head[] = {16, -16, -14, 1, -1, 3};
    std::copy(std::begin(head), std::end(head), x.begin());
    std::fill(x.begin() + 16, x.end(), 2.0f);
    BlockQ4_0 b{};
    forge::quantize_row_q4_0(x.data(), &b, kBlock);
    // 16 comes first among the two largest magnitudes: d = 16 / -8 = -2 (f16 0xc000), x / d = -x / 2.
    // 16 -> 0; -16 -> 16.5 -> 16, clamped to 15; -14 -> 15; 1 -> 8; -1 -> 9; 3 -> 7; 0 -> 8; 2 -> 7.
    const std::vector<std::uint8_t> want = {0x00, 0xc0, 0x70, 0x7f, 0x7f, 0x78, 0x79, 0x77, 0x78, 0x78,
                                            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78};
    EXPECT_EQ(raw(b), want);

    Block y{};
    forge::dequantize_row_q4_0(&b, y.data(), kBlock);
    EXPECT_EQ(y[0], 16.0f);
    EXPECT_EQ(y[1], -14.0f);  // the clamp costs one whole step
    EXPECT_EQ(y[5], 2.0f);    // 3 is a tie (code 7.0 exactly) and goes up
    EXPECT_EQ(y[31], 2.0f);
}

TEST(Q4_0, AllZeroBlock) {
    const Block x{};
    BlockQ4_0 b{};
    forge::quantize_row_q4_0(x.data(), &b, kBlock);
    // d = 0 / -8 is -0.0, stored as f16 0x8000 (as ggml stores it); every code is 0 * 0 + 8.5 -> 8.
    std::vector<std::uint8_t> want(sizeof(BlockQ4_0), 0x88);
    want[0] = 0x00, want[1] = 0x80;
    EXPECT_EQ(raw(b), want);
    Block y;
    y.fill(1.0f);
    forge::dequantize_row_q4_0(&b, y.data(), kBlock);
    for (const float v : y) EXPECT_EQ(v, 0.0f);
}

// --- error bounds ---------------------------------------------------------------------------------

// Blocks of many shapes: gaussian at several scales (down to where d is an f16 subnormal or flushes to
// zero, up to where it nears the f16 limit), heavy outliers, constants, single spikes, both signs.
std::vector<float> varied_data() {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> out;
    for (const float scale : {1e-7f, 1e-5f, 1e-3f, 0.02f, 1.0f, 30.0f, 400.0f})
        for (int b = 0; b < 64; ++b)
            for (int i = 0; i < kBlock; ++i) out.push_back(scale * normal(rng));
    for (int b = 0; b < 64; ++b)
        for (int i = 0; i < kBlock; ++i) out.push_back(i == b % kBlock ? (b % 2 ? -50.0f : 50.0f) : normal(rng));
    for (const float c : {0.3f, -0.3f, 1.0f, -7.0f}) out.insert(out.end(), kBlock, c);
    return out;
}

// |x - dequantized| for one block with scale d (f32, before rounding to f16): half a step, plus what
// storing d as f16 moves the largest code, plus f32 rounding slack.
double half_step_bound(double d, double d16, int max_code) {
    return 0.5 * std::fabs(d) * (1 + 1e-5) + max_code * std::fabs(d - d16) + 1e-30;
}

// Checks every element of the blocks against the f32 values they were quantized from: off by at most
// half a step, except Q4_0's code 15, which stands for everything from 7.5 steps up to the opposite
// extreme at 8 and so may miss by a whole step. Returns how many elements needed that exception.
template <class B>
std::size_t expect_within_half_a_step(const float* x, const B* q, std::size_t n_blocks) {
    constexpr bool q8 = std::is_same_v<B, BlockQ8_0>;
    std::vector<float> y(n_blocks * kBlock);
    forge::dequantize_row(q8 ? DType::Q8_0 : DType::Q4_0, q, y.data(), y.size());
    std::size_t clamped = 0;
    for (std::size_t b = 0; b < n_blocks; ++b) {
        float amax = 0;
        for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[b * kBlock + i]));
        const double d = amax / (q8 ? 127.0 : 8.0), d16 = std::fabs(forge::f16_to_f32(q[b].d));
        const double bound = half_step_bound(d, d16, q8 ? 127 : 8);
        for (int i = 0; i < kBlock; ++i) {
            const std::size_t k = b * kBlock + i;
            const double err = std::fabs(double(x[k]) - y[k]);
            if (err <= bound) continue;
            EXPECT_TRUE(!q8 && code_of(q[b], i) == 15) << "block " << b << " element " << i << ": error " << err;
            EXPECT_LE(err, 2 * bound) << "block " << b << " element " << i;
            ++clamped;
        }
    }
    return clamped;
}

TEST(Q8_0, ErrorIsAtMostHalfAStep) {
    const std::vector<float> x = varied_data();
    std::vector<BlockQ8_0> q(x.size() / kBlock);
    forge::quantize_row_q8_0(x.data(), q.data(), x.size());
    EXPECT_EQ(expect_within_half_a_step(x.data(), q.data(), q.size()), 0u);
}

TEST(Q4_0, ErrorIsAtMostHalfAStepExceptTheClampedCode) {
    const std::vector<float> x = varied_data();
    std::vector<BlockQ4_0> q(x.size() / kBlock);
    forge::quantize_row_q4_0(x.data(), q.data(), x.size());
    EXPECT_GT(expect_within_half_a_step(x.data(), q.data(), q.size()), 0u);  // the data has opposite extremes
}

// --- the quantized test models --------------------------------------------------------------------

// What quantizing one tensor of the f32 model gives, compared with the same tensor of a quantized model.
struct Comparison {
    std::size_t codes = 0, differing_codes = 0, differing_scales = 0;
};

// `v` is where an element's code is decided by truncation (Q4_0: x/d + 8.5; Q8_0: |x/d| + 0.5): within
// this distance of an integer, rounding errors of a few ulps in x * (1/d) can move the code by one.
bool near_integer(double v) { return std::fabs(v - std::round(v)) < 1e-4; }

template <class B>
Comparison compare_blocks(const float* x, const B* ours, const B* theirs, std::size_t n_blocks) {
    Comparison c;
    for (std::size_t b = 0; b < n_blocks; ++b, x += kBlock) {
        c.differing_scales += ours[b].d != theirs[b].d;
        float extreme = 0;  // Q8_0: max |x|; Q4_0: the signed value of largest magnitude
        for (int i = 0; i < kBlock; ++i)
            if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
        for (int i = 0; i < kBlock; ++i) {
            const int mine = code_of(ours[b], i), file = code_of(theirs[b], i);
            ++c.codes;
            if (mine == file) continue;
            ++c.differing_codes;
            const double v = std::is_same_v<B, BlockQ8_0> ? std::fabs(double(x[i]) / (std::fabs(extreme) / 127.0f)) + 0.5
                                                          : double(x[i]) / (extreme / -8.0f) + 8.5;
            EXPECT_EQ(std::abs(mine - file), 1) << "block " << b << " element " << i;
            EXPECT_TRUE(near_integer(v)) << "block " << b << " element " << i << ": x = " << x[i] << ", position " << v;
        }
    }
    return c;
}

// The quantized models hold what quantizing the f32 model gives, with one kind of exception. forge
// computes x * (1/d) in f32, as ggml's reference quantizer does; the files' generator computed more
// precisely. Where the exact position lies within ~1e-6 of a rounding boundary the two can disagree: in
// output.weight, x / d = 40.4999988 comes out of x * (1/d) in f32 as exactly 40.5 and rounds to 41, where
// the file has 40. So: every scale equal, every other code equal, each differing code off by one at a
// near-tie, such codes rare, and every weight in the files within half a step of the f32 weight.
TEST(QuantFiles, MatchQuantizingTheF32Model) {
    const auto f32 = forge::gguf::File::open(forge::test::model_path("synth-llama-f32.gguf"));
    std::size_t tensors = 0, identical_tensors = 0, codes = 0, differing_codes = 0;
    for (const char* name : {"synth-llama-q8_0.gguf", "synth-llama-q4_0.gguf", "synth-llama-f16.gguf"}) {
        const auto q = forge::gguf::File::open(forge::test::model_path(name));
        for (const auto& t : q.tensors()) {
            SCOPED_TRACE(std::string(name) + " " + t.name);
            const auto& src = f32.tensor(t.name);
            ASSERT_EQ(src.dims, t.dims);
            ASSERT_EQ(src.dtype(), DType::F32);
            const auto* x = reinterpret_cast<const float*>(src.data);
            std::vector<std::byte> ours(t.bytes);
            forge::quantize_row(t.dtype(), x, ours.data(), src.elements);
            ++tensors;
            const bool identical = std::memcmp(ours.data(), t.data, t.bytes) == 0;
            identical_tensors += identical;
            if (t.dtype() == DType::F32 || t.dtype() == DType::F16) {
                EXPECT_TRUE(identical);  // norms are copied, f16 is round-to-nearest-even: no freedom
                continue;
            }
            ASSERT_TRUE(t.dtype() == DType::Q8_0 || t.dtype() == DType::Q4_0) << t.type_name();
            const std::size_t n_blocks = src.elements / kBlock;
            const Comparison c =
                t.dtype() == DType::Q8_0
                    ? compare_blocks(x, reinterpret_cast<const BlockQ8_0*>(ours.data()), reinterpret_cast<const BlockQ8_0*>(t.data), n_blocks)
                    : compare_blocks(x, reinterpret_cast<const BlockQ4_0*>(ours.data()), reinterpret_cast<const BlockQ4_0*>(t.data), n_blocks);
            EXPECT_EQ(c.differing_scales, 0u);
            codes += c.codes;
            differing_codes += c.differing_codes;

            if (t.dtype() == DType::Q8_0)
                expect_within_half_a_step(x, reinterpret_cast<const BlockQ8_0*>(t.data), n_blocks);
            else
                expect_within_half_a_step(x, reinterpret_cast<const BlockQ4_0*>(t.data), n_blocks);
        }
    }
    EXPECT_EQ(tensors, 3 * f32.tensors().size());
    EXPECT_GT(identical_tensors, tensors / 2);
    EXPECT_LE(differing_codes * 100000, codes);  // at most 1 in 100 000
}

// --- read-only types: hand-worked blocks and llama.cpp's files -------------------------------------
// f16 bit patterns of the scales below.
constexpr std::uint16_t kHalf = 0x3800, kQuarter = 0x3400, kMinusOne = 0xBC00;

// Q2_K: element e is in sub-block e / 16 (scale low nibble, min high nibble of scales[e / 16]); its code is
// bits 2 * ((e % 128) / 32) of qs[32 * (e / 128) + e % 32]; value = d * scale * code - dmin * min.
TEST(Q2_K, HandWorkedBlock) {
    forge::BlockQ2_K b{};
    b.d = kHalf, b.dmin = kQuarter;
    b.scales[0] = 0x21, b.scales[2] = 0x13, b.scales[4] = 0x05, b.scales[6] = 0xF7, b.scales[9] = 0x3A;
    b.qs[0] = 0b11100100;  // elements 0, 32, 64, 96: codes 0, 1, 2, 3
    b.qs[48] = 0b11;       // element 144 (second half, sub-block 9): code 3
    std::vector<float> want(256, 0.0f);
    // Code 0 leaves -dmin * min across each sub-block.
    for (int i = 0; i < 16; ++i) want[i] = -0.5f, want[32 + i] = -0.25f, want[96 + i] = -3.75f, want[144 + i] = -0.75f;
    want[0] = -0.5f;   // 0.5 * 1 * 0 - 0.25 * 2
    want[32] = 1.25f;  // 0.5 * 3 * 1 - 0.25 * 1
    want[64] = 5.0f;   // 0.5 * 5 * 2
    want[96] = 6.75f;  // 0.5 * 7 * 3 - 0.25 * 15
    want[144] = 14.25f;  // 0.5 * 10 * 3 - 0.25 * 3
    std::vector<float> got(256, 99.0f);
    forge::dequantize_row(DType::Q2_K, &b, got.data(), got.size());
    EXPECT_EQ(got, want);
}

// Q3_K: sub-block j's 6-bit scale has its low nibble in scales[j] (j < 8) or the high nibble of scales[j - 8],
// its top two bits at bit 2 * (j / 4) of scales[8 + j % 4], and is stored plus 32. The code's low two bits sit
// as in Q2_K; its third bit is bit e / 32 of hmask[e % 32], and a clear bit subtracts 4.
TEST(Q3_K, HandWorkedBlock) {
    forge::BlockQ3_K b{};
    b.d = kHalf;
    std::memset(b.hmask, 0xFF, sizeof b.hmask);  // every code 0 -> every value 0 unless set below
    b.scales[0] = 0x01, b.scales[8] = 0x02;      // sub-block 0: 33 -> 1
    b.scales[5] = 0x0A, b.scales[9] = 0x08;      // sub-block 5: 42 -> 10
    b.scales[2] = 0x90, b.scales[10] = 0x10;     // sub-block 10: 25 -> -7
    b.qs[0] = 0x03;                              // element 0: code 3
    b.qs[16] = 0x20, b.hmask[16] = 0xFB;         // element 80: code 2 - 4
    b.qs[37] = 0x04;                             // element 165: code 1
    b.hmask[31] = 0x7F;                          // element 255 (scale 0 - 32): code 0 - 4
    std::vector<float> want(256, 0.0f);
    want[0] = 1.5f;     // 0.5 * 1 * 3
    want[80] = -10.0f;  // 0.5 * 10 * -2
    want[165] = -3.5f;  // 0.5 * -7 * 1
    want[255] = 64.0f;  // 0.5 * -32 * -4
    std::vector<float> got(256, 99.0f);
    forge::dequantize_row(DType::Q3_K, &b, got.data(), got.size());
    EXPECT_EQ(got, want);
}

// Q4_1: value = code * d + m, nibbles laid out as Q4_0's.
TEST(Q4_1, HandWorkedBlock) {
    forge::BlockQ4_1 b{};
    b.d = kHalf, b.m = kMinusOne;
    b.qs[0] = 0x3F, b.qs[15] = 0xA0;
    std::vector<float> want(32, -1.0f);
    want[0] = 6.5f, want[16] = 0.5f, want[31] = 4.0f;
    std::vector<float> got(32, 99.0f);
    forge::dequantize_row(DType::Q4_1, &b, got.data(), got.size());
    EXPECT_EQ(got, want);
}

// Q8_K (the K-quants' activations): the value of largest magnitude maps to -127, so a negative one gives
// scale 1 / (-127 / max) and codes x * 127 / |max| rounded to nearest-even; bsums sum each 16 codes.
TEST(Q8_K, HandWorkedBlocks) {
    std::vector<float> x(256, 0.0f);
    x[0] = -127.0f, x[1] = 0.5f, x[2] = 1.5f, x[3] = -2.5f, x[4] = 127.0f, x[16] = 3.0f, x[255] = -1.0f;
    forge::BlockQ8_K b;
    forge::quantize_row_q8_K(x.data(), &b, x.size());
    EXPECT_EQ(b.d, 1.0f);
    const std::int8_t want[] = {-127, 0, 2, -2, 127};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(b.qs[i], want[i]) << i;
    EXPECT_EQ(b.qs[16], 3);
    EXPECT_EQ(b.qs[255], -1);
    EXPECT_EQ(b.bsums[0], 0);
    EXPECT_EQ(b.bsums[1], 3);
    EXPECT_EQ(b.bsums[15], -1);
    x[4] = 128.0f;  // now the largest magnitude, positive: the scale flips sign
    forge::quantize_row_q8_K(x.data(), &b, x.size());
    EXPECT_EQ(b.d, 1.0f / (-127.0f / 128.0f));
    EXPECT_EQ(b.qs[4], -127);
    EXPECT_EQ(b.qs[0], 126);  // -127 * (-127 / 128) = 126.01
    std::fill(x.begin(), x.end(), 0.0f);
    forge::quantize_row_q8_K(x.data(), &b, x.size());
    EXPECT_EQ(b.d, 0.0f);
    EXPECT_TRUE(std::all_of(std::begin(b.qs), std::end(b.qs), [](std::int8_t q) { return q == 0; }));
}

// Q8_1 (Q4_1's and Q5_1's activations): d = amax / 127 as f16, codes x * 127 / amax rounded to nearest-even,
// s = d * sum(codes) as f16.
TEST(Q8_1, HandWorkedBlock) {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f, x[1] = 0.5f, x[2] = 1.5f, x[3] = -2.5f, x[31] = -100.0f;
    forge::BlockQ8_1 b;
    forge::quantize_row_q8_1(x.data(), &b, x.size());
    EXPECT_EQ(forge::f16_to_f32(b.d), 1.0f);
    EXPECT_EQ(forge::f16_to_f32(b.s), 27.0f);  // 127 + 0 + 2 - 2 - 100
    const std::int8_t want[] = {127, 0, 2, -2};
    for (int i = 0; i < 4; ++i) EXPECT_EQ(b.qs[i], want[i]) << i;
    EXPECT_EQ(b.qs[31], -100);
}

// Each of llama.cpp's K-quant files decodes to the f32 model's weights within its tensor types' error: bounds
// on the error's RMS relative to the weights' and on its largest value relative to the largest weight of each 32.
// A misplaced bit or scale would give errors the size of the weights themselves. The bounds are ~10% and
// ~25% above what these files measure (those shrink about 2x per bit).
TEST(KQuantFiles, DecodeToTheF32ModelsWeights) {
    struct Bound {
        DType type;
        double rms, max_over_amax;
    };
    constexpr Bound kBounds[] = {{DType::Q2_K, 0.33, 0.55}, {DType::Q3_K, 0.17, 0.31}, {DType::Q4_K, 0.08, 0.165},
                                 {DType::Q5_K, 0.04, 0.092}, {DType::Q6_K, 0.02, 0.027}};
    const auto f32 = forge::gguf::File::open(forge::test::model_path("synth-llama256-f32.gguf"));
    std::vector<DType> seen;
    for (const char* name : {"synth-llama256-Q2_K.gguf", "synth-llama256-Q4_K_M.gguf", "synth-llama256-Q5_K_S.gguf",
                             "synth-llama256-Q6_K.gguf"}) {
        const auto q = forge::gguf::File::open(forge::test::model_path(name));
        for (const auto& t : q.tensors()) {
            if (t.dtype() == DType::F32) continue;
            SCOPED_TRACE(std::string(name) + " " + t.name + " " + std::string(t.type_name()));
            const auto* bound = std::find_if(std::begin(kBounds), std::end(kBounds), [&](const Bound& b) { return b.type == t.dtype(); });
            ASSERT_NE(bound, std::end(kBounds));
            seen.push_back(t.dtype());
            const auto& src = f32.tensor(t.name);
            ASSERT_EQ(src.dims, t.dims);
            const auto* x = reinterpret_cast<const float*>(src.data);
            std::vector<float> y(t.elements);
            forge::dequantize_row(t.dtype(), t.data, y.data(), y.size());
            double err2 = 0, x2 = 0, worst = 0;
            for (std::size_t b = 0; b < y.size(); b += kBlock) {
                double amax = 0, emax = 0;
                for (std::size_t i = b; i < b + kBlock; ++i) {
                    const double e = double(x[i]) - y[i];
                    err2 += e * e, x2 += double(x[i]) * x[i];
                    amax = std::max(amax, std::fabs(double(x[i])));
                    emax = std::max(emax, std::fabs(e));
                }
                worst = std::max(worst, emax / amax);
            }
            EXPECT_LE(std::sqrt(err2 / x2), bound->rms);
            EXPECT_LE(worst, bound->max_over_amax);
        }
    }
    for (const Bound& b : kBounds) EXPECT_NE(std::find(seen.begin(), seen.end(), b.type), seen.end()) << forge::dtype_name(b.type);
}

// Messages that list the computable types name every one of them.
TEST(DTypes, ComputableListNamesEveryComputableType) {
    const std::string list = FORGE_COMPUTABLE_TYPES;
    for (const auto& d : forge::kDTypes) {
        const bool listed = list.find(std::string(d.name) + ",") != std::string::npos ||
                            list.find(std::string(d.name) + " ") != std::string::npos || list.ends_with(d.name);
        EXPECT_EQ(listed, d.computable) << d.name;
    }
}

// --- type-dispatched rows -------------------------------------------------------------------------

TEST(QuantRow, DispatchMatchesTheDirectFunctionsAndStaysInBounds) {
    std::vector<float> x = varied_data();
    x.resize(8 * kBlock);
    const std::size_t n = x.size();
    for (const DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
        SCOPED_TRACE(std::string(forge::dtype_name(t)));
        const std::size_t bytes = forge::row_bytes(t, n);
        std::vector<std::byte> got(bytes + 16, std::byte{0xab}), want(bytes);
        std::vector<float> back(n);  // what dequantizing `want` directly gives
        switch (t) {
            case DType::F32:
                std::memcpy(want.data(), x.data(), bytes);
                back = x;
                break;
            case DType::F16:
            case DType::BF16:
                for (std::size_t i = 0; i < n; ++i) {
                    const std::uint16_t h = t == DType::F16 ? forge::f32_to_f16(x[i]) : forge::f32_to_bf16(x[i]);
                    std::memcpy(want.data() + 2 * i, &h, 2);
                    back[i] = t == DType::F16 ? forge::f16_to_f32(h) : forge::bf16_to_f32(h);
                }
                break;
            case DType::Q8_0: {
                auto* blocks = reinterpret_cast<BlockQ8_0*>(want.data());
                forge::quantize_row_q8_0(x.data(), blocks, n);
                forge::dequantize_row_q8_0(blocks, back.data(), n);
                break;
            }
            default: {
                auto* blocks = reinterpret_cast<BlockQ4_0*>(want.data());
                forge::quantize_row_q4_0(x.data(), blocks, n);
                forge::dequantize_row_q4_0(blocks, back.data(), n);
                break;
            }
        }
        forge::quantize_row(t, x.data(), got.data(), n);
        EXPECT_EQ(std::memcmp(got.data(), want.data(), bytes), 0);
        EXPECT_TRUE(std::all_of(got.begin() + std::ptrdiff_t(bytes), got.end(), [](std::byte b) { return b == std::byte{0xab}; }))
            << "wrote past the row";

        std::vector<float> y(n + 4, -1.0f);
        forge::dequantize_row(t, got.data(), y.data(), n);
        EXPECT_TRUE(std::equal(back.begin(), back.end(), y.begin()));
        EXPECT_TRUE(std::all_of(y.begin() + std::ptrdiff_t(n), y.end(), [](float v) { return v == -1.0f; })) << "wrote past the row";
    }
}

// Rows can be read from every type forge computes with, but written only in the types `forge quantize`
// writes; anything else (activation-only types among them) is an error naming the type.
TEST(QuantRow, RefusesTypesItCannotConvert) {
    std::vector<float> x(256, 1.0f);
    std::vector<std::byte> buf(4096);
    const auto expect_refusal = [](const std::string& name, const std::function<void()>& convert) {
        try {
            convert();
            ADD_FAILURE() << "converted " << name;
        } catch (const forge::Error& e) {
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
    };
    for (const DType t : {DType::Q4_K, DType::Q6_K, DType::Q5_0, DType::I8}) {
        const std::string name(forge::dtype_name(t));
        expect_refusal(name, [&] { forge::quantize_row(t, x.data(), buf.data(), x.size()); });
    }
    for (const DType t : {DType::Q8_K, DType::Q8_1, DType::I8}) {
        const std::string name(forge::dtype_name(t));
        expect_refusal(name, [&] { forge::dequantize_row(t, buf.data(), x.data(), x.size()); });
    }
}

}  // namespace
