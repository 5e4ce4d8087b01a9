// The fast CPU kernels against the reference kernels, on random shapes that include every tail: the
// instruction set forge was compiled for and the portable kernels both. Also the thread pool's
// coverage, and that a decode step allocates nothing once warmed up.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <thread>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "forge/cpu/activation.hpp"
#include "forge/cpu/kernels/attention.hpp"
#include "forge/cpu/kernels/elementwise.hpp"
#include "forge/cpu/kernels/gemm.hpp"
#include "forge/cpu/kernels/rope.hpp"
#include "forge/cpu/rope.hpp"
#include "forge/model/model.hpp"
#include "forge/quant/row.hpp"
#include "testdata.hpp"
#include "random_gemm_case.hpp"

// Counts heap allocations so the decode loop can be shown to make none. GCC cannot see that this
// operator new is malloc and flags the matching free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<long> g_allocations{0};
}
// The nothrow form is replaced too (std::stable_sort's buffer takes it): left to the runtime, its memory
// would come from the runtime's own operator new and reach the free() below. The throwing form is it.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n) {
    if (void* p = operator new(n, std::nothrow)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace forge::test {
namespace {

struct Matrix {
    std::vector<std::byte> data;
    cpu::WeightView view;
};

Matrix random_matrix(DType type, int rows, int cols, std::mt19937& rng) {
    Matrix m{random_weights(type, rows, cols, rng), {}};
    m.view = {m.data.data(), type, rows, cols};
    return m;
}

std::vector<float> random_rows(int tokens, int stride, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(std::size_t(tokens) * std::size_t(stride));
    for (auto& v : x) v = dist(rng);
    return x;
}

// Largest error quantizing x to the activation blocks of `type`'s kernel may cause in W·x, w_row being the
// dequantized row and `row` its bytes. Q8_0 / Q8_1: each code is off by at most half a step (amax/254 over
// 32 values) plus the f16 rounding of the scale (2^-11 relative per value), times |w|; Q8_1's f16 sum
// d * sum(codes), which carries the weights' offset m, adds |m| * sum|x| * 2^-11. Q8_K: half a step of
// amax/127 over 256 values, its float scale's rounding negligible. BF16: each value rounded to 8 bits.
double activation_error_bound(DType type, const std::byte* row, const std::vector<float>& w_row, const float* x, int cols) {
    double bound = 0;
    if (type == DType::BF16) {
        for (int c = 0; c < cols; ++c) bound += std::fabs(w_row[std::size_t(c)] * x[c]) / 256.0;
        return bound * 1.01 + 1e-5;
    }
    const int n = dtype_info(type).block_elems == 256 ? 256 : 32;
    const bool offset = type == DType::Q4_1 || type == DType::Q5_1;
    for (int b = 0; b < cols / n; ++b) {
        double amax = 0, xsum = 0;
        for (int j = 0; j < n; ++j) amax = std::max(amax, double(std::fabs(x[b * n + j]))), xsum += std::fabs(x[b * n + j]);
        const double f16 = n == 32 ? 1.0 / 2048.0 : 1e-6;
        for (int j = 0; j < n; ++j)
            bound += std::fabs(w_row[std::size_t(b * n + j)]) * (amax / 254.0 + std::fabs(x[b * n + j]) * f16);
        if (offset) bound += std::fabs(f16_to_f32(cpu::load_u16(row + std::size_t(b) * dtype_info(type).block_bytes + 2))) * xsum / 2048.0;
    }
    return bound * 1.01 + 1e-4;
}

// Batch size from which gemm switches to Isa's batch kernel for `type` (none: never).
template <class Isa>
int batch_kernel_min_tokens(DType type) {
    int min = std::numeric_limits<int>::max();
    const auto of = [&]<DType W>() {
        if constexpr (requires { cpu::BatchKernel<Isa, W>::kMinTokens; }) min = cpu::BatchKernel<Isa, W>::kMinTokens;
    };
    switch (type) {
        case DType::Q8_0: of.template operator()<DType::Q8_0>(); break;
        case DType::Q4_0: of.template operator()<DType::Q4_0>(); break;
        case DType::Q5_0: of.template operator()<DType::Q5_0>(); break;
        case DType::Q4_K: of.template operator()<DType::Q4_K>(); break;
        case DType::Q5_K: of.template operator()<DType::Q5_K>(); break;
        case DType::Q6_K: of.template operator()<DType::Q6_K>(); break;
        default: break;
    }
    return min;
}

template <class Isa>
void check_gemm(DType type, std::uint32_t seed) {
    std::mt19937 rng(seed);
    cpu::ThreadPool pool(2);
    const bool quant = is_quantized(type);
    for (int iter = 0; iter < 24; ++iter) {
        const int rows = 1 + int(rng() % 37);
        // Quantized rows of 1 to 40 blocks (K-quants: 1 to 6): odd counts, and more than one 16-block chunk of scales.
        const int block = int(dtype_info(type).block_elems);
        const int cols = quant ? block * (1 + int(rng() % (block == 256 ? 6 : 40))) : 1 + int(rng() % 200);
        const int tokens = 1 + int(rng() % 40);  // batches past one 16-token group, with a partial one
        const int stride = cols + int(rng() % 5);
        const Matrix m = random_matrix(type, rows, cols, rng);
        const auto x = random_rows(tokens, stride, rng);
        const int y_stride = rows + 3;
        std::vector<float> want(std::size_t(tokens) * std::size_t(y_stride)), got(want.size());
        cpu::matmul(m.view, x.data(), tokens, stride, want.data(), y_stride, pool);
        cpu::GemmInput in;
        in.set(x.data(), tokens, stride, cols);
        cpu::gemm<Isa>(m.view, in, got.data(), y_stride, pool);
        std::vector<float> w_row(static_cast<std::size_t>(cols));
        std::vector<double> mags(want.size());  // sum of |w * x| of each output: what rounding scales with
        for (int r = 0; r < rows; ++r) {
            dequantize_row(type, m.view.row(r), w_row.data(), std::size_t(cols));
            for (int t = 0; t < tokens; ++t) {
                const float* xt = &x[std::size_t(t) * std::size_t(stride)];
                double& mag = mags[std::size_t(t) * std::size_t(y_stride) + std::size_t(r)];
                for (int c = 0; c < cols; ++c) mag += std::fabs(w_row[std::size_t(c)] * xt[c]);
                const double bound = quant || type == DType::BF16 ? activation_error_bound(type, m.view.row(r), w_row, xt, cols)
                                                                  : 1e-5 * mag + 1e-6;
                const std::size_t i = std::size_t(t) * std::size_t(y_stride) + std::size_t(r);
                ASSERT_NEAR(got[i], want[i], bound) << dtype_name(type) << " " << rows << "x" << cols << ", token " << t
                                                    << " of " << tokens << ", row " << r;
            }
        }
        // A token's result is bit-identical whether it is computed alone or inside a batch the same kernel
        // computes; a batch kernel sums the same scaled block dots in another order, so it agrees to rounding.
        const bool same_kernel = tokens < batch_kernel_min_tokens<Isa>(type);
        for (int t = 0; t < tokens; ++t) {
            std::vector<float> one(static_cast<std::size_t>(rows));
            in.set(&x[std::size_t(t) * std::size_t(stride)], 1, stride, cols);
            cpu::gemm<Isa>(m.view, in, one.data(), rows, pool);
            for (int r = 0; r < rows; ++r) {
                const std::size_t i = std::size_t(t) * std::size_t(y_stride) + std::size_t(r);
                const float batched = got[i];
                if (same_kernel) ASSERT_EQ(one[std::size_t(r)], batched) << dtype_name(type) << " token " << t << " row " << r;
                else ASSERT_NEAR(one[std::size_t(r)], batched, 1e-5 * mags[i]) << dtype_name(type) << " token " << t << " row " << r;
            }
        }
    }
}

class Gemm : public ::testing::TestWithParam<DType> {};

TEST_P(Gemm, NativeMatchesReferenceMatmul) { check_gemm<cpu::isa::Native>(GetParam(), 1); }
TEST_P(Gemm, PortableMatchesReferenceMatmul) { check_gemm<cpu::isa::Portable>(GetParam(), 2); }

// The instruction set's kernels compute the portable kernels' integer block dots from the same quantized
// activations, so they differ from them only in float rounding (the order scaled block dots are summed in).
TEST_P(Gemm, NativeMatchesPortableToRounding) {
    std::mt19937 rng(5);
    cpu::ThreadPool pool(2);
    const DType type = GetParam();
    const int block = int(dtype_info(type).block_elems);
    for (const int blocks : {1, 3, 8}) {
        const int cols = block * blocks * (block == 1 ? 32 : 1), rows = 19;
        const Matrix m = random_matrix(type, rows, cols, rng);
        for (const int tokens : {1, 5}) {
            const auto x = random_rows(tokens, cols, rng);
            std::vector<float> native(std::size_t(tokens * rows)), portable(native.size());
            cpu::GemmInput in;
            in.set(x.data(), tokens, cols, cols);
            cpu::gemm<cpu::isa::Native>(m.view, in, native.data(), rows, pool);
            in.set(x.data(), tokens, cols, cols);
            cpu::gemm<cpu::isa::Portable>(m.view, in, portable.data(), rows, pool);
            std::vector<float> w_row(static_cast<std::size_t>(cols));
            for (int r = 0; r < rows; ++r) {
                dequantize_row(type, m.view.row(r), w_row.data(), std::size_t(cols));
                for (int t = 0; t < tokens; ++t) {
                    double mag = 0;
                    for (int c = 0; c < cols; ++c) mag += std::fabs(w_row[std::size_t(c)] * x[std::size_t(t * cols + c)]);
                    const std::size_t i = std::size_t(t * rows + r);
                    ASSERT_NEAR(native[i], portable[i], 1e-5 * mag + 1e-6) << cols << " columns, token " << t << " row " << r;
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(WeightTypes, Gemm,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                           DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// BF16 weights see the activations rounded to BF16, as llama.cpp's BF16 dot does: the reference matmul of the
// rounded activations, not of the originals.
TEST(Gemm, Bf16RoundsTheActivations) {
    std::mt19937 rng(3);
    cpu::ThreadPool pool(2);
    const Matrix m = random_matrix(DType::BF16, 7, 40, rng);
    auto x = random_rows(2, 40, rng);
    std::vector<float> unrounded(14), want(14), got(14);
    cpu::matmul(m.view, x.data(), 2, 40, unrounded.data(), 7, pool);
    cpu::GemmInput in;
    in.set(x.data(), 2, 40, 40);
    cpu::gemm(m.view, in, got.data(), 7, pool);
    for (auto& v : x) v = bf16_to_f32(f32_to_bf16(v));
    cpu::matmul(m.view, x.data(), 2, 40, want.data(), 7, pool);
    int moved = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i])));
        moved += std::fabs(unrounded[i] - want[i]) > 1e-4 * (1 + std::fabs(want[i]));
    }
    EXPECT_GT(moved, 0) << "rounding the activations should move the results";
}

// Every kind of activation input (float, Q8_0 rows of both offsets, Q8_K, Q8_1) shared by one dispatch.
TEST(Gemm, BatchOfMixedTypesMatchesSeparateCalls) {
    std::mt19937 rng(8);
    cpu::ThreadPool pool(2);
    const DType types[] = {DType::Q8_0, DType::Q4_0, DType::F16, DType::BF16, DType::F32, DType::Q4_K, DType::Q6_K, DType::Q5_0, DType::Q4_1};
    constexpr int n = std::size(types);
    std::vector<Matrix> ms;
    for (int i = 0; i < n; ++i) ms.push_back(random_matrix(types[i], 13 + 7 * i, 256, rng));
    for (const int tokens : {1, 5}) {
        const auto x = random_rows(tokens, 256, rng);
        std::vector<std::vector<float>> batched(n), separate(n);
        cpu::GemmInput in;
        for (int i = 0; i < n; ++i) {
            const int rows = ms[std::size_t(i)].view.rows;
            batched[std::size_t(i)].resize(std::size_t(tokens * rows));
            separate[std::size_t(i)].resize(std::size_t(tokens * rows));
            in.set(x.data(), tokens, 256, 256);
            cpu::gemm(ms[std::size_t(i)].view, in, separate[std::size_t(i)].data(), rows, pool);
        }
        in.set(x.data(), tokens, 256, 256);
        auto job = [&](int i) { return cpu::GemmJob{ms[std::size_t(i)].view, batched[std::size_t(i)].data(), ms[std::size_t(i)].view.rows}; };
        cpu::gemm({job(0), job(1), job(2), job(3), job(4), job(5), job(6), job(7), job(8)}, in, pool);
        for (int i = 0; i < n; ++i) EXPECT_EQ(batched[std::size_t(i)], separate[std::size_t(i)]) << dtype_name(types[i]) << ", " << tokens << " tokens";
    }
}

// A row length fixed at compile time (a model with compiled traits) gives the same bits as the same
// length read at run time: odd block counts, one and three 16-block chunks of scales, decode and batches.
template <class Isa, int Cols>
void check_compiled_cols(DType type, std::mt19937& rng) {
    cpu::ThreadPool pool(2);
    const Matrix m = random_matrix(type, 23, Cols, rng);
    for (const int tokens : {1, 3, 6, 21}) {
        const auto x = random_rows(tokens, Cols, rng);
        std::vector<float> runtime(std::size_t(tokens) * 23), compiled(runtime.size());
        cpu::GemmInput in;
        in.set(x.data(), tokens, Cols, Cols);
        cpu::gemm<Isa>(m.view, in, runtime.data(), 23, pool);
        in.set(x.data(), tokens, Cols, Cols);
        cpu::gemm<Isa, Cols>(m.view, in, compiled.data(), 23, pool);
        EXPECT_EQ(runtime, compiled) << dtype_name(type) << " " << Cols << " columns, " << tokens << " tokens";
    }
}

TEST(Gemm, CompiledRowLengthGivesRuntimeBits) {
    std::mt19937 rng(11);
    for (const DType type : {DType::Q8_0, DType::Q4_0, DType::F16}) {  // F16: float weights ignore Cols
        check_compiled_cols<cpu::isa::Native, 96>(type, rng);    // 3 blocks: one partial step
        check_compiled_cols<cpu::isa::Native, 1184>(type, rng);  // 37 blocks: three scale chunks, a 1-block last step
    }
    for (const DType type : {DType::Q5_0, DType::Q4_1}) check_compiled_cols<cpu::isa::Native, 96>(type, rng);
    for (const DType type : {DType::Q4_K, DType::Q6_K, DType::Q2_K}) check_compiled_cols<cpu::isa::Native, 768>(type, rng);
}

TEST(Gemm, CompiledRowLengthRefusesOtherMatrices) {
    std::mt19937 rng(12);
    cpu::ThreadPool pool(1);
    const Matrix m = random_matrix(DType::Q4_0, 4, 64, rng);
    const auto x = random_rows(1, 64, rng);
    std::vector<float> y(4);
    cpu::GemmInput in;
    in.set(x.data(), 1, 64, 64);
    try {
        cpu::gemm<cpu::isa::Native, 96>(m.view, in, y.data(), 4, pool);
        FAIL() << "a 64-column matrix went through a GEMM compiled for 96";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "a matrix of 64 columns was given to a GEMM compiled for 96");
    }
}

template <class Isa>
void check_attention() {
    std::mt19937 rng(4);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const auto& [heads, kv_heads, head_dim] : {std::tuple{4, 2, 32}, {9, 3, 64}, {2, 1, 20}, {8, 8, 36}}) {
        const cpu::AttentionShape s{heads, kv_heads, head_dim, 1.0f / std::sqrt(float(head_dim))};
        const int positions = 1 + int(rng() % 40);  // with and without a tail after groups of four
        std::vector<float> q(std::size_t(heads * head_dim));
        for (auto& v : q) v = dist(rng);
        std::vector<std::uint16_t> k(std::size_t(positions * s.kv_dim())), v(k.size());
        for (auto& e : k) e = f32_to_f16(dist(rng));
        for (auto& e : v) e = f32_to_f16(dist(rng));
        std::vector<float> scores(static_cast<std::size_t>(positions)), want(q.size()), got(q.size());
        const int first = positions > 3 ? 2 : 0;
        for (int h = 0; h < heads; ++h) {
            cpu::attend_head(s, h, q.data(), k.data(), v.data(), first, positions - 1, scores.data(), want.data());
            cpu::attend_head_fast<Isa>(s, h, q.data(), k.data(), v.data(), first, positions - 1, scores.data(), got.data());
        }
        for (std::size_t i = 0; i < q.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << "head_dim " << head_dim << " at " << i;
    }
}

TEST(Attention, NativeMatchesReference) { check_attention<cpu::isa::Native>(); }
TEST(Attention, PortableMatchesReference) { check_attention<cpu::isa::Portable>(); }

// Four consecutive query tokens at once give exactly what each alone gives: every head, head sizes with
// and without a tail of 16, position counts around groups of four, windows not starting at 0.
template <class Isa>
void check_token_attention() {
    std::mt19937 rng(8);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (const auto& [heads, kv_heads, head_dim] : {std::tuple{9, 3, 64}, {4, 2, 20}, {2, 1, 128}, {4, 4, 36}, {2, 2, 80}}) {
        const cpu::AttentionShape s{heads, kv_heads, head_dim, 1.0f / std::sqrt(float(head_dim))};
        const std::size_t Q = std::size_t(heads * head_dim);
        for (const int last : {0, 1, 4, 6, 30 + int(rng() % 40)}) {
            const int positions = last + 4, first = last > 5 ? 3 : 0;
            std::vector<float> q(4 * Q);
            for (auto& v : q) v = dist(rng);
            std::vector<std::uint16_t> k(std::size_t(positions * s.kv_dim())), v(k.size());
            for (auto& e : k) e = f32_to_f16(dist(rng));
            for (auto& e : v) e = f32_to_f16(dist(rng));
            std::vector<float> scores(4 * std::size_t(positions)), want(4 * Q, -1.0f), got(4 * Q, -2.0f);
            for (int h = 0; h < heads; ++h) {
                for (int r = 0; r < 4; ++r)
                    cpu::attend_head_fast<Isa>(s, h, &q[std::size_t(r) * Q], k.data(), v.data(), first, last + r, scores.data(), &want[std::size_t(r) * Q]);
                cpu::attend_tokens_fast<Isa>(s, h, q.data(), Q, k.data(), v.data(), first, last, scores.data(), std::size_t(positions), got.data(), Q);
            }
            ASSERT_EQ(got, want) << heads << "/" << kv_heads << " heads of " << head_dim << ", last " << last << ", first " << first;
        }
    }
}

TEST(Attention, NativeFourTokensAreBitIdenticalToOne) { check_token_attention<cpu::isa::Native>(); }
TEST(Attention, PortableFourTokensAreBitIdenticalToOne) { check_token_attention<cpu::isa::Portable>(); }

// Storing float rows as f16 (the KV cache) rounds exactly as f32_to_f16 does: ties to even, the
// subnormal range, overflow at 65520, infinities; NaN stays NaN.
template <class Isa>
void check_f16_store() {
    std::mt19937 rng(4);
    std::vector<float> x;
    for (int e = -27; e <= 17; ++e)  // every half exponent, from below the smallest subnormal to overflow
        for (int j = 0; j < 40; ++j) x.push_back(std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng), e) * (j % 2 ? -1.0f : 1.0f));
    for (const std::uint16_t h : {std::uint16_t(0x0001), std::uint16_t(0x03ff), std::uint16_t(0x0400), std::uint16_t(0x3c01), std::uint16_t(0x7bfe)}) {
        const float lo = f16_to_f32(h), hi = f16_to_f32(std::uint16_t(h + 1));
        x.push_back((lo + hi) / 2);  // an exact tie: to the even one of the two
    }
    for (const float f : {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, -1e9f, std::numeric_limits<float>::infinity()}) x.push_back(f);
    x.push_back(std::numeric_limits<float>::quiet_NaN());
    for (const int n : {int(x.size()), 37, 16, 5}) {
        std::vector<std::uint16_t> got(std::size_t(n) + 1, 0xabcd);
        cpu::F16Rows<Isa>::store(x.data() + x.size() - std::size_t(n), got.data(), n);
        for (int i = 0; i < n; ++i) {
            const float v = x[x.size() - std::size_t(n) + std::size_t(i)];
            if (std::isnan(v)) EXPECT_TRUE(std::isnan(f16_to_f32(got[std::size_t(i)]))) << n;
            else ASSERT_EQ(got[std::size_t(i)], f32_to_f16(v)) << v << " in a row of " << n;
        }
        EXPECT_EQ(got[std::size_t(n)], 0xabcd) << "wrote past the row's end, n = " << n;
    }
}

TEST(F16Rows, NativeStoreRoundsAsF32ToF16) { check_f16_store<cpu::isa::Native>(); }
TEST(F16Rows, PortableStoreRoundsAsF32ToF16) { check_f16_store<cpu::isa::Portable>(); }

// The activation quantizer's vector form gives the portable form's codes, sum and scale bit for bit:
// random blocks over many magnitudes (f16 scales from subnormal to large), all-zero blocks, rounding
// ties, a block whose largest value is negative, and NaN, which both skip when finding the scale.
TEST(Q8Rows, QuantizeBlockMatchesPortable) {
    std::mt19937 rng(9);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<std::array<float, 32>> blocks;
    for (int e = -40; e <= 30; e += 2) {
        std::array<float, 32> b{};
        for (auto& v : b) v = std::ldexp(dist(rng), e);
        blocks.push_back(b);
    }
    blocks.push_back({});
    std::array<float, 32> ties{};
    for (int j = 0; j < 32; ++j) ties[std::size_t(j)] = 0.5f * float(j - 16);  // d = 7.5 / 127: many exact halves
    ties[0] = 7.5f;
    blocks.push_back(ties);
    std::array<float, 32> negative = ties;
    negative[0] = -100.0f;
    blocks.push_back(negative);
    std::array<float, 32> nan = negative;
    nan[0] = std::numeric_limits<float>::quiet_NaN();
    blocks.push_back(nan);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        std::int8_t want[32], got[32];
        std::int32_t want_sum = 0, got_sum = 0;
        const float want_d = cpu::Q8Rows::quantize_block_portable(blocks[i].data(), want, want_sum);
        const float got_d = cpu::Q8Rows::quantize_block(blocks[i].data(), got, got_sum);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(got_d), std::bit_cast<std::uint32_t>(want_d)) << "block " << i;
        ASSERT_EQ(got_sum, want_sum) << "block " << i;
        for (int j = 0; j < 32; ++j) ASSERT_EQ(got[j], want[j]) << "block " << i << " value " << j;
    }
}

// Blocks whose scale's inverse is not a finite float (the largest value a tiny denormal) or that hold an
// infinity: every code is defined (0 where it cannot be computed) and the sum fits, in both forms. The
// GGUF fuzzer reached these through a model's activations.
TEST(Q8Rows, QuantizeBlockOfDenormalsOrInfinitiesIsDefined) {
    std::array<float, 32> tiny{}, inf{};
    for (int j = 0; j < 32; ++j) tiny[std::size_t(j)] = std::bit_cast<float>(std::uint32_t(j + 1)) * (j % 2 ? -1.0f : 1.0f);
    for (int j = 0; j < 32; ++j) inf[std::size_t(j)] = float(j);
    inf[5] = std::numeric_limits<float>::infinity();
    for (const bool is_tiny : {true, false}) {
        const std::array<float, 32>& block = is_tiny ? tiny : inf;
        for (const bool portable : {true, false}) {
            std::int8_t codes[32];
            std::int32_t sum = 1;
            if (portable) cpu::Q8Rows::quantize_block_portable(block.data(), codes, sum);
            else cpu::Q8Rows::quantize_block(block.data(), codes, sum);
            std::int32_t total = 0;
            for (const std::int8_t c : codes) total += c;
            EXPECT_EQ(sum, total) << is_tiny << portable;
            EXPECT_LE(std::abs(sum), 32 * 127);
            if (is_tiny) {
                EXPECT_EQ(sum, 0) << "a scale whose inverse overflows quantizes to zeros";
            }
        }
    }
}

// The K-quants' activation quantizer as the kernels run it gives the reference's codes, sums and scale
// bit for bit: rows over many magnitudes, exact rounding ties, a largest magnitude held by a positive and a
// negative value (the first decides the scale's sign), zeros, NaN, infinities and denormals.
TEST(Q8KRows, QuantizeMatchesReference) {
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<std::array<float, forge::kQK_K>> blocks;
    for (int e = -40; e <= 30; e += 5) {
        std::array<float, forge::kQK_K> b{};
        for (auto& v : b) v = std::ldexp(dist(rng), e);
        blocks.push_back(b);
    }
    blocks.push_back({});
    std::array<float, forge::kQK_K> ties{};
    for (int j = 0; j < forge::kQK_K; ++j) ties[std::size_t(j)] = 0.5f * float(j % 200 - 100);  // scale 1: halves stay halves
    ties[7] = -127.0f;
    blocks.push_back(ties);
    std::array<float, forge::kQK_K> both_signs = ties;
    both_signs[3] = 127.0f;  // the same magnitude before -127: the scale is negative
    const std::size_t both_at = blocks.size();
    blocks.push_back(both_signs);
    std::array<float, forge::kQK_K> odd = ties;
    odd[0] = std::numeric_limits<float>::quiet_NaN();
    odd[9] = -std::numeric_limits<float>::quiet_NaN();
    blocks.push_back(odd);
    odd[200] = std::numeric_limits<float>::infinity();
    blocks.push_back(odd);
    std::array<float, forge::kQK_K> tiny{};
    for (int j = 0; j < forge::kQK_K; ++j) tiny[std::size_t(j)] = std::bit_cast<float>(std::uint32_t(j % 7 + 1)) * (j % 2 ? -1.0f : 1.0f);
    blocks.push_back(tiny);
    std::array<float, forge::kQK_K> nan_only{};
    nan_only.fill(std::numeric_limits<float>::quiet_NaN());
    blocks.push_back(nan_only);
    std::vector<float> row;
    for (const auto& b : blocks) row.insert(row.end(), b.begin(), b.end());
    std::vector<forge::BlockQ8_K> want(blocks.size()), got(blocks.size());
    forge::quantize_row_q8_K(row.data(), want.data(), row.size());
    cpu::quantize_q8_K(row.data(), got.data(), row.size());
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i].d), std::bit_cast<std::uint32_t>(want[i].d)) << "block " << i;
        for (int j = 0; j < forge::kQK_K; ++j) ASSERT_EQ(got[i].qs[j], want[i].qs[j]) << "block " << i << " value " << j;
        for (int j = 0; j < forge::kQK_K / 16; ++j) ASSERT_EQ(got[i].bsums[j], want[i].bsums[j]) << "block " << i << " sum " << j;
    }
    EXPECT_LT(want[both_at].d, 0.0f) << "127 before -127: the first of the largest magnitudes sets the sign";
}

// Quantizing by lanes in column ranges (the GEMM input splits a group's row between threads where the
// groups are fewer than the threads) gives what quantizing whole rows gives, in every layout the batch
// kernels read: codes, corrections, scales and scaled sums, whichever order the ranges come in.
TEST(Q8Lanes, ColumnRangesQuantizeAsWholeRows) {
    std::mt19937 rng(13);
    const int tokens = 37, cols = 768;  // a partial group; three Q8_K super-blocks
    const std::vector<float> x = random_rows(tokens, cols, rng);
    const cpu::LanesLayout layouts[] = {{}, {.offset = 8}, {.block = 32, .k_codes = true, .sums = true}, {.offset = 32, .block = 16, .k_codes = true}};
    for (const cpu::LanesLayout& layout : layouts) {
        cpu::Q8Lanes whole, ranges;
        whole.prepare(tokens, cols, layout);
        whole.quantize(x.data(), cols, 0, tokens);
        ranges.prepare(tokens, cols, layout);
        const int q = ranges.quantum();
        for (int g = ranges.groups() - 1; g >= 0; --g) {
            const int t0 = g * cpu::Q8Lanes::kLanes, t1 = std::min(tokens, t0 + cpu::Q8Lanes::kLanes);
            ranges.quantize(x.data(), cols, t0, t1, q, cols);
            ranges.quantize(x.data(), cols, t0, t1, 0, q);
        }
        const std::size_t lanes = cpu::Q8Lanes::kLanes;
        for (int g = 0; g < whole.groups(); ++g)
            for (int b = 0; b < whole.blocks(); ++b) {
                const std::string at = "offset " + std::to_string(layout.offset) + ", block " + std::to_string(layout.block) + ", group " +
                                       std::to_string(g) + ", block " + std::to_string(b);
                ASSERT_EQ(0, std::memcmp(whole.codes(g, b), ranges.codes(g, b), std::size_t(layout.block) * lanes)) << at;
                ASSERT_EQ(0, std::memcmp(whole.corr(g, b), ranges.corr(g, b), lanes * sizeof(std::int32_t))) << at;
                ASSERT_EQ(0, std::memcmp(whole.d(g, b), ranges.d(g, b), lanes * sizeof(float))) << at;
                if (layout.sums) {
                    ASSERT_EQ(0, std::memcmp(whole.sums(g, b), ranges.sums(g, b), lanes * sizeof(float))) << at;
                }
            }
    }
}

TEST(Elementwise, SiluMulMatchesReference) {
    std::mt19937 rng(5);
    for (const int n : {1, 15, 16, 17, 172, 1536}) {
        std::vector<float> gate = random_rows(1, n, rng), up = random_rows(1, n, rng);
        for (auto& g : gate) g *= 8.0f;  // reach exp's far range too
        gate[0] = -100.0f;
        std::vector<float> want(gate.size()), got(gate.size());
        cpu::silu_mul(gate.data(), up.data(), want.data(), n);
        cpu::silu_mul_fast(gate.data(), up.data(), got.data(), n);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(got[std::size_t(i)], want[std::size_t(i)], 2e-6f * (1.0f + std::fabs(want[std::size_t(i)]))) << n << " at " << i;
    }
}

TEST(Elementwise, SoftmaxMatchesReference) {
    std::mt19937 rng(6);
    for (const int n : {1, 2, 16, 33, 500}) {
        std::vector<float> x = random_rows(1, n, rng);
        for (auto& v : x) v *= 30.0f;
        std::vector<float> want = x, got = x;
        cpu::softmax(want.data(), n);
        cpu::softmax_fast(got.data(), n);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(got[std::size_t(i)], want[std::size_t(i)], 1e-6f) << n << " at " << i;
    }
}

// Llama-3-style frequency factors for a 64-wide head: 1 for the fastest pairs, up to 8 for the slowest.
std::vector<float> test_freq_factors() {
    std::vector<float> f(32);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = i < 8 ? 1.0f : i < 16 ? 1.0f + 0.37f * float(i - 7) : 8.0f;
    return f;
}

TEST(Rope, TableIsBitIdenticalToReference) {
    std::mt19937 rng(7);
    const auto factors = test_freq_factors();
    for (const float* ff : {static_cast<const float*>(nullptr), factors.data()})
        for (const RopeStyle style : {RopeStyle::adjacent, RopeStyle::neox}) {
            // Positions as a pass of two sequences holds them: any order, not consecutive.
            const int positions[5] = {1000, 1001, 7, 1002, 8};
            cpu::RopeTable table(5, 64);
            table.compute(positions, 10000.0f, ff);
            for (int t = 0; t < 5; ++t) {
                std::vector<float> want = random_rows(3, 64, rng), got = want;
                cpu::rope(want.data(), 3, 64, positions[t], 10000.0f, style, ff);
                cpu::rope_rotate(table.angles(t), table.half(), got.data(), 3, style);
                ASSERT_EQ(got, want) << "position " << positions[t] << (ff ? " with factors" : "");
            }
        }
}

// Pair i of every head turns by pos * base^(-2i/head_dim) / factor[i]: cpu::rope against that rotation
// computed directly in double, for both pairings.
TEST(Rope, FrequencyFactorsDivideEachPairsAngle) {
    std::mt19937 rng(8);
    const int heads = 3, hd = 64;
    const double base = 500000.0;
    const auto factors = test_freq_factors();
    for (const RopeStyle style : {RopeStyle::adjacent, RopeStyle::neox}) {
        for (const int pos : {0, 1, 7, 300}) {
            const std::vector<float> x = random_rows(heads, hd, rng);
            std::vector<float> got = x;
            cpu::rope(got.data(), heads, hd, pos, float(base), style, factors.data());
            for (int h = 0; h < heads; ++h)
                for (int i = 0; i < hd / 2; ++i) {
                    const int a = h * hd + (style == RopeStyle::adjacent ? 2 * i : i);
                    const int b = h * hd + (style == RopeStyle::adjacent ? 2 * i + 1 : i + hd / 2);
                    const double theta = pos * std::pow(base, -2.0 * i / hd) / factors[std::size_t(i)];
                    const double xa = x[std::size_t(a)], xb = x[std::size_t(b)];
                    const double want_a = xa * std::cos(theta) - xb * std::sin(theta);
                    const double want_b = xa * std::sin(theta) + xb * std::cos(theta);
                    ASSERT_NEAR(got[std::size_t(a)], want_a, 1e-4) << "pos " << pos << " head " << h << " pair " << i;
                    ASSERT_NEAR(got[std::size_t(b)], want_b, 1e-4) << "pos " << pos << " head " << h << " pair " << i;
                }
            // Factors of 1 are no factors, bit for bit; the test's factors change the slow pairs.
            std::vector<float> ones_run = x, none_run = x;
            const std::vector<float> ones(std::size_t(hd / 2), 1.0f);
            cpu::rope(ones_run.data(), heads, hd, pos, float(base), style, ones.data());
            cpu::rope(none_run.data(), heads, hd, pos, float(base), style);
            EXPECT_EQ(ones_run, none_run);
            if (pos > 0) {
                EXPECT_NE(got, none_run);
            }
        }
    }
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
    for (const int threads : {1, 2, 3, 5}) {
        cpu::ThreadPool pool(threads);
        for (const std::size_t count : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(1001)}) {
            for (const std::size_t grain : {std::size_t(1), std::size_t(4)}) {
                std::vector<std::atomic<int>> hits(count);
                pool.parallel_for(count, [&](std::size_t b, std::size_t e) {
                    EXPECT_TRUE(b % grain == 0);
                    for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
                }, grain);
                for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " threads, count " << count;
            }
        }
    }
}

// A full set of parts is rounds of one part a thread, each round half the one before, so the threads
// that stream slower than the others hold the dispatch up by a small part, not a large one.
TEST(ThreadPool, PartsShrinkByRoundsAndCoverTheWork) {
    for (const int threads : {2, 3, 16}) {
        cpu::ThreadPool pool(threads);
        const auto n = std::size_t(threads);
        const std::size_t last = 64, units = 15 * n * last;  // 15 parts of the last round's size a thread
        const int parts = pool.parts_for(units);
        ASSERT_EQ(parts, threads * cpu::ThreadPool::kPartsPerThread);
        EXPECT_EQ(pool.part_begin(0, parts, units), 0u);
        EXPECT_EQ(pool.part_begin(parts, parts, units), units);
        for (int p = 0; p < parts; ++p) {
            const std::size_t round = std::size_t(p) / n;
            EXPECT_EQ(pool.part_begin(p + 1, parts, units) - pool.part_begin(p, parts, units), last << (3 - round))
                << threads << " threads, part " << p;
        }
        // Any amount of work: parts in order, none past the end, together all of it.
        for (const std::size_t u : {std::size_t(5), std::size_t(64), std::size_t(1001), std::size_t(7168)}) {
            const int k = pool.parts_for(u);
            for (int p = 0; p < k; ++p) ASSERT_LE(pool.part_begin(p, k, u), pool.part_begin(p + 1, k, u)) << u << " units, part " << p;
            EXPECT_EQ(pool.part_begin(k, k, u), u);
        }
    }
}

TEST(ThreadPool, RunCallsEveryPartOnceAcrossManyDispatches) {
    cpu::ThreadPool pool(3);
    for (int i = 0; i < 5000; ++i) {
        const int parts = 1 + i % 13;
        std::vector<std::atomic<int>> calls(static_cast<std::size_t>(parts));
        std::atomic<int> bad_thread{0};
        pool.run(parts, [&](int part, int thread) {
            calls[std::size_t(part)].fetch_add(1);
            if (thread < 0 || thread >= 3) bad_thread.fetch_add(1);
        });
        for (const auto& c : calls) ASSERT_EQ(c.load(), 1) << "dispatch " << i;
        ASSERT_EQ(bad_thread.load(), 0);
    }
}

// A busy thread must not hold the others up: parts are claimed, not assigned. The thread that takes
// part 0 waits there until every other part is done, which only another thread can do.
TEST(ThreadPool, OtherThreadsTakeTheWorkOfABusyOne) {
    cpu::ThreadPool pool(2);
    std::atomic<int> others_done{0};
    bool waited_out = false;
    pool.run(8, [&](int part, int) {
        if (part != 0) {
            others_done.fetch_add(1);
            return;
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (others_done.load() < 7 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        waited_out = others_done.load() < 7;
    });
    EXPECT_FALSE(waited_out);
    EXPECT_EQ(others_done.load(), 7);
}

TEST(ModelDecode, AllocatesNothingAfterWarmUp) {
    for (const char* file : {"synth-llama-q4_0.gguf", "synth-qwen2-q8_0.gguf", "synth-llama-f16.gguf"}) {
        Model<> m(gguf::File::open(model_path(file)), {.threads = 2});
        const std::int32_t prompt[] = {1, 5, 9, 13};
        m.prefill(prompt);
        m.decode(3);
        const long before = g_allocations.load();
        for (int i = 0; i < 16; ++i) m.decode(std::int32_t(7 + i));
        EXPECT_EQ(g_allocations.load() - before, 0) << file;
    }
}

}  // namespace
}  // namespace forge::test
