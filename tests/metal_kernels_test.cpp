// Every Metal kernel against its CPU twin on randomized shapes, including rows that do not fill a
// threadgroup, one-token batches and positions past the sliding window, on each executor of the exact
// text Metal compiles: the MSL emulator (real barrier and simdgroup semantics, checked pointers) and the
// CUDA executor (the text compiled by nvcc, run on an NVIDIA GPU; skipped, saying why, where there is
// none). Then the launchers' argument checks and the emulator's own fault reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "forge/core/half.hpp"
#include "forge/cpu/activation.hpp"
#include "forge/cpu/attention.hpp"
#include "forge/cpu/matmul.hpp"
#include "forge/cpu/rmsnorm.hpp"
#include "forge/cpu/rope.hpp"
#include "forge/cpu/softmax.hpp"
#include "forge/metal/cuda/device.hpp"
#include "forge/metal/emu/open.hpp"
#include "forge/metal/open.hpp"
#include "forge/metal/launch.hpp"
#include "forge/models/catalog.hpp"
#include "forge/quant/row.hpp"
#include "forge/sample/categorical.hpp"
#include "metal_fault_kernels.hpp"
#include "metal_test_shape.hpp"
#include "run_process.hpp"
#include "block_fields.hpp"
#include "error_of.hpp"

namespace forge::metal {
namespace {

using test::error_of;
using test::f16_fields;

using Llama = models::SynthLlama<DType::F32>;        // head_dim 32, adjacent RoPE
using LlamaQ8 = models::SynthLlama<DType::Q8_0>;     // has gemm_q8_0
using TestShape = emu_test::KernelTestShape;         // head_dim 64, NeoX, Q4_0 (gemm_q4_0), window 16
using ScaledShape = emu_test::ScaledAttentionShape;  // granite: q·k scaled by 1/20, not 1/sqrt(32)

std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

template <class T>
std::unique_ptr<Buffer> upload(Device& dev, const std::vector<T>& v) {
    auto b = dev.new_buffer(std::max<std::size_t>(1, v.size()) * sizeof(T));
    if (!v.empty()) std::memcpy(b->contents(), v.data(), v.size() * sizeof(T));
    return b;
}

template <class T>
std::vector<T> download(Buffer& b, std::size_t n) {
    std::vector<T> v(n);
    std::memcpy(v.data(), b.contents(), n * sizeof(T));
    return v;
}

// The executor the running test runs kernels on (MetalKernels' parameter; the emulator elsewhere).
Backend executor = Backend::metal_emu;

std::unique_ptr<Device> make_device(std::string_view name, std::span<const metal_src::KernelSource> kernels, std::string_view text) {
    if (executor == Backend::metal_cuda) return cuda::make_device(name, kernels, text);
    return emu::make_device(name, kernels, text);
}
std::unique_ptr<Device> make_device(std::string_view name, const metal_src::Library& lib) {
    return make_device(name, std::span(lib.kernels.data(), lib.n_kernels), lib.text.view());
}

// A device running compiled traits T's library: the constant text Metal would get.
template <class T>
std::unique_ptr<Device> device_for() {
    return make_device(T::name, metal_src::library<T>);
}

// The largest error against the CPU twin that the running test measured (rel_error, matmul_error): each
// kernel test prints it, so a run on another executor reports what it measured, not only that it passed.
double worst_error = 0;
double noted(double error) {
    worst_error = std::max(worst_error, error);
    return error;
}

class MetalKernels : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        executor = GetParam();
        worst_error = 0;
        if (executor == Backend::metal_cuda)
            if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    }
    void TearDown() override {
        executor = Backend::metal_emu;
        if (worst_error > 0) std::printf("[ max error ] %.3g\n", worst_error);
        RecordProperty("max_error", std::to_string(worst_error));
    }
};

template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

// max |a - b| / (max |b| + tiny)
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0, m = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        d = std::max(d, double(std::fabs(a[i] - b[i])));
        m = std::max(m, double(std::fabs(b[i])));
    }
    return noted(d / (m + 1e-30));
}

TEST_P(MetalKernels, RmsNormMatchesCpu) {
    auto dev = device_for<TestShape>();
    std::mt19937 rng(1);
    const float eps = TestShape::shape.rms_eps;
    for (const int n : {1, 64, 300, 1000})
        for (const int rows : {1, 3}) {
            const int stride = n + 5;
            auto x = random_floats(std::size_t(rows) * stride, rng, 2.0f), w = random_floats(std::size_t(n), rng);
            auto bx = upload(*dev, x), bw = upload(*dev, w), by = dev->new_buffer(std::size_t(rows) * n * 4);
            rms_norm(dev->encoder(), view<float>(*bx), view<float>(*bw), view<float>(*by), n, rows, stride, n);
            dev->finish();
            std::vector<float> ref(std::size_t(rows) * n);
            for (int r = 0; r < rows; ++r) cpu::rmsnorm(&x[std::size_t(r) * stride], w.data(), &ref[std::size_t(r) * n], n, eps);
            EXPECT_LE(rel_error(download<float>(*by, ref.size()), ref), 2e-6) << "n " << n << " rows " << rows;
        }
}

// qwen3's per-head norm: every head of q (or k) inside each token's fused QKV row, in place.
TEST_P(MetalKernels, RmsNormOfEachHeadInQkvRowsMatchesCpu) {
    auto dev = device_for<TestShape>();
    std::mt19937 rng(11);
    const float eps = TestShape::shape.rms_eps;
    for (const int hd : {32, 64, 128})
        for (const int tokens : {1, 3}) {
            const int heads = 4, stride = 7 * hd + 3;  // q heads, then k and v, and a gap
            auto x = random_floats(std::size_t(tokens) * stride, rng, 2.0f), w = random_floats(std::size_t(hd), rng);
            auto bx = upload(*dev, x), bw = upload(*dev, w);
            rms_norm_heads(dev->encoder(), view<float>(*bx), view<float>(*bw), hd, heads, tokens, stride);
            dev->finish();
            for (int t = 0; t < tokens; ++t)
                for (int h = 0; h < heads; ++h) {
                    float* head = &x[std::size_t(t) * stride + std::size_t(h) * hd];
                    cpu::rmsnorm(head, w.data(), head, hd, eps);
                }
            EXPECT_LE(rel_error(download<float>(*bx, x.size()), x), 2e-6) << "head_dim " << hd << " tokens " << tokens;
        }
}

// Weights of `type`: random floats quantized where forge writes the type, else random blocks.
std::vector<std::byte> random_weights(DType type, int rows, int cols, std::mt19937& rng) {
    std::vector<std::byte> w(std::size_t(rows) * row_bytes(type, std::size_t(cols)));
    const auto fields = f16_fields(type);
    if (fields.empty()) {
        const auto f = random_floats(std::size_t(rows) * cols, rng, 0.5f);
        for (int r = 0; r < rows; ++r)
            quantize_row(type, &f[std::size_t(r) * cols], w.data() + std::size_t(r) * row_bytes(type, std::size_t(cols)), std::size_t(cols));
        return w;
    }
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : w) b = std::byte(byte(rng));
    const std::size_t block = dtype_info(type).block_bytes;
    std::normal_distribution<float> scale(0.0f, 0.01f);
    for (std::size_t at = 0; at < w.size(); at += block)
        for (const int f : fields) {
            const std::uint16_t h = f32_to_f16(scale(rng));
            std::memcpy(&w[at + std::size_t(f)], &h, 2);
        }
    return w;
}

// Every weight type with kernels, and a device whose library holds them all (TestShape's constants).
std::uint32_t all_weight_types() {
    std::uint32_t set = 0;
    for (const DType t : metal_src::kKernelDTypes) set |= metal_src::dtype_bit(t);
    return set;
}
struct AllTypesDevice {
    metal::LibraryPtr lib = metal::runtime_library(TestShape::shape, all_weight_types());
    std::unique_ptr<Device> dev = make_device("every weight type", *lib);
};

// Columns of a test row of `type`: whole blocks, more than one where the block is wide.
int test_cols(DType type) {
    if (!is_quantized(type)) return 172;
    return dtype_info(type).block_elems == 256 ? 512 : 96;
}

// Runs matvec (or gemm) on the executor over `parts` matrices of `type` stacked (one launch, each matrix
// in its own buffer, as a fused projection binds them) and cpu::matmul of each over dequantize_row, for
// the GEMM with both operands rounded to half as its tiles hold them (a half x half product is exact in
// float, so only the order of the sums differs); returns the largest difference over the largest sum of
// |w x| terms, the scale of a dot product's rounding (relative to the outputs themselves, one that
// cancels to near zero would make any summation order look wrong). `x_stride`: 0 for cols + 3 (inputs
// off the 4-float alignment of vector loads).
double matmul_error(Device& dev, const KernelConfig& cfg, DType type, const std::vector<int>& parts, int cols, int tokens,
                    bool use_gemm, std::mt19937& rng, int x_stride = 0) {
    int rows = 0;
    for (const int r : parts) rows += r;
    if (x_stride == 0) x_stride = cols + 3;
    const int y_stride = rows + 2;
    const auto x = random_floats(std::size_t(tokens) * x_stride, rng);
    auto bx = upload(dev, x), by = dev.new_buffer(std::size_t(tokens) * y_stride * 4);
    std::vector<std::vector<std::byte>> w;
    std::vector<std::unique_ptr<Buffer>> bw;
    std::vector<WeightRows> launch_parts;
    for (const int r : parts) {
        w.push_back(random_weights(type, r, cols, rng));
        bw.push_back(upload(dev, w.back()));
        launch_parts.push_back({view<std::byte>(*bw.back()), r});
    }
    if (use_gemm)
        gemm(dev.encoder(), cfg, type, launch_parts, cols, view<float>(*bx), tokens, x_stride, view<float>(*by), y_stride);
    else
        matvec(dev.encoder(), cfg, type, launch_parts, cols, view<float>(*bx), tokens, x_stride, view<float>(*by), y_stride);
    dev.finish();
    std::vector<float> ref(std::size_t(tokens) * y_stride, 0.0f), terms(ref.size());
    cpu::ThreadPool pool(1);
    const auto operand = [&](float v) { return use_gemm ? round_f16(v) : v; };
    const auto magnitude = [](std::vector<float> v) {
        for (auto& e : v) e = std::fabs(e);
        return v;
    };
    std::vector<float> xo(x.size());
    std::transform(x.begin(), x.end(), xo.begin(), operand);
    const auto x_abs = magnitude(xo);
    int row0 = 0;
    for (std::size_t p = 0; p < parts.size(); ++p) {
        const int r = parts[p];
        std::vector<float> wo(std::size_t(r) * cols);
        for (int i = 0; i < r; ++i)
            dequantize_row(type, w[p].data() + std::size_t(i) * row_bytes(type, std::size_t(cols)), &wo[std::size_t(i) * cols],
                           std::size_t(cols));
        std::transform(wo.begin(), wo.end(), wo.begin(), operand);
        const auto f32 = [&](const std::vector<float>& m) {
            return cpu::WeightView{reinterpret_cast<const std::byte*>(m.data()), DType::F32, r, cols};
        };
        cpu::matmul(f32(wo), xo.data(), tokens, x_stride, ref.data() + row0, y_stride, pool);
        const auto w_abs = magnitude(wo);
        cpu::matmul(f32(w_abs), x_abs.data(), tokens, x_stride, terms.data() + row0, y_stride, pool);
        row0 += r;
    }
    const auto got = download<float>(*by, ref.size());
    double diff = 0, scale = 0;
    for (int t = 0; t < tokens; ++t)
        for (int r = 0; r < rows; ++r) {
            const std::size_t i = std::size_t(t) * y_stride + r;
            diff = std::max(diff, double(std::fabs(got[i] - ref[i])));
            scale = std::max(scale, double(terms[i]));
        }
    return noted(diff / scale);
}
double matmul_error(Device& dev, const KernelConfig& cfg, DType type, int rows, int cols, int tokens, bool use_gemm,
                    std::mt19937& rng, int x_stride = 0) {
    return matmul_error(dev, cfg, type, std::vector<int>{rows}, cols, tokens, use_gemm, rng, x_stride);
}

template <class Traits>
double matmul_error(DType type, int rows, int cols, int tokens, bool use_gemm, std::mt19937& rng) {
    auto dev = device_for<Traits>();
    return matmul_error(*dev, metal_src::library<Traits>.config, type, rows, cols, tokens, use_gemm, rng);
}

TEST_P(MetalKernels, MatvecEveryWeightTypeMatchesCpu) {
    AllTypesDevice d;
    std::mt19937 rng(2);
    // One row; a simdgroup's rows cut short, for a batch; more rows than a threadgroup's.
    for (const DType t : metal_src::kKernelDTypes)
        for (const auto& [rows, tokens] : {std::pair{1, 1}, std::pair{33, 3}, std::pair{100, 1}})
            EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, rows, test_cols(t), tokens, false, rng), 1e-6)
                << dtype_name(t) << " rows " << rows << " tokens " << tokens;
}

TEST_P(MetalKernels, MatvecVectorLoadsMatchCpu) {
    // Inputs 4-float aligned, so every type reads them (and plain types their weights) 4 wide; widths
    // whose f32 or f16 rows are not 16- or 8-byte multiples take the 1-wide loads throughout; columns
    // past the last group of 4 take them at the end.
    AllTypesDevice d;
    std::mt19937 rng(16);
    for (const DType t : metal_src::kKernelDTypes)
        EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, 37, test_cols(t), 2, false, rng, test_cols(t) + 4), 1e-6) << dtype_name(t);
    for (const DType t : {DType::F32, DType::F16, DType::BF16})
        for (const int cols : {1, 6, 130, 171})
            for (const int x_stride : {cols, cols + 1, (cols + 3) / 4 * 4})
                EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, 9, cols, 2, false, rng, x_stride), 1e-6)
                    << dtype_name(t) << " cols " << cols << " x_stride " << x_stride;
}

// Q, K and V (or gate and up) in one launch: matrices in buffers of their own, their products end to end
// in each output row. Row counts put a simdgroup's MV_ROWS rows, a GEMM tile's 32 and a GEMM quadrant's
// 16 across matrices; 33 tokens give whole quadrants (stored directly) and partial ones (staged).
TEST_P(MetalKernels, FusedProjectionMatchesEachMatrixOnCpu) {
    AllTypesDevice d;
    std::mt19937 rng(15);
    for (const DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
        for (const auto& parts : {std::vector<int>{6, 3, 3}, std::vector<int>{17, 9}, std::vector<int>{40, 8, 9}})
            for (const int tokens : {1, 3, 9, 33}) {
                EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, parts, test_cols(t), tokens, false, rng), 1e-6)
                    << "matvec " << dtype_name(t) << " parts " << parts.size() << " tokens " << tokens;
                if (is_quantized(t)) {
                    EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, parts, test_cols(t), tokens, true, rng), 1e-6)
                        << "gemm " << dtype_name(t) << " parts " << parts.size() << " tokens " << tokens;
                }
            }
}

TEST_P(MetalKernels, MatvecTakesRowsLongerThanThreadgroupMemory) {
    // An 8B model's down projection reads rows of 14336 floats (56 KiB): no size of the mat-vec is
    // bounded by the 32 KiB of threadgroup memory.
    AllTypesDevice d;
    std::mt19937 rng(5);
    for (const DType t : {DType::F32, DType::Q4_0, DType::Q4_K, DType::Q6_K})
        EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, 9, 14336, 1, false, rng), 1e-6) << dtype_name(t);
}

TEST_P(MetalKernels, SimdgroupMatrixGemmMatchesCpu) {
    std::mt19937 rng(3);
    // A whole tile, tiles and quadrants cut short in rows and tokens, several tiles of both.
    for (const int rows : {32, 17, 50, 70})
        for (const int tokens : {1, 8, 20, 33, 70}) {
            EXPECT_LE(matmul_error<LlamaQ8>(DType::Q8_0, rows, 64, tokens, true, rng), 1e-6) << "Q8_0 " << rows << "x" << tokens;
            EXPECT_LE(matmul_error<TestShape>(DType::Q4_0, rows, 96, tokens, true, rng), 1e-6) << "Q4_0 " << rows << "x" << tokens;
        }
}

TEST_P(MetalKernels, GemmEveryQuantizedTypeMatchesCpu) {
    AllTypesDevice d;
    std::mt19937 rng(4);
    for (const DType t : metal_src::kKernelDTypes) {
        if (!is_quantized(t)) continue;
        // Whole tiles of rows with one token, and with whole tiles of tokens; tiles cut short in rows and
        // tokens; several tiles of both, their last quadrants partial.
        for (const auto& [rows, tokens] : {std::pair{32, 1}, std::pair{64, 32}, std::pair{17, 8}, std::pair{50, 33}, std::pair{70, 70}})
            EXPECT_LE(matmul_error(*d.dev, d.lib->config, t, rows, test_cols(t), tokens, true, rng), 1e-6)
                << dtype_name(t) << " " << rows << "x" << tokens;
    }
}

template <class Traits>
void check_rope() {
    auto dev = device_for<Traits>();
    const auto& cfg = metal_src::library<Traits>.config;
    const auto& s = Traits::shape;
    std::mt19937 rng(4);
    const int hd = s.head_dim, nq = s.heads, nk = s.kv_heads;
    const int stride = (nq + 2 * nk) * hd;  // fused QKV rows
    // Frequency factors: all ones (what a model without rope_freqs binds; the CPU then runs without any)
    // and llama3-like ones from 1 to 8.
    const std::vector<float> ones(std::size_t(hd / 2), 1.0f);
    const std::vector<float> scaled = [&] {
        std::vector<float> f(std::size_t(hd / 2));
        for (std::size_t i = 0; i < f.size(); ++i) f[i] = std::min(8.0f, 1.0f + 0.7f * float(i));
        return f;
    }();
    // LongRoPE's attention factor scales cos and sin (1 elsewhere).
    for (const auto* factors : {&ones, &scaled})
        for (const float mscale : {1.0f, 1.1902381f})
        for (const int tokens : {1, 5})
            for (const int pos0 : {0, 37}) {
                auto x = random_floats(std::size_t(tokens) * stride, rng);
                auto bx = upload(*dev, x), bf = upload(*dev, *factors);
                rope(dev->encoder(), cfg, view<float>(*bx), view<float>(*bf), tokens, nq, nk, hd, stride, nq * hd, pos0, mscale);
                dev->finish();
                const float* ff = factors == &ones ? nullptr : factors->data();
                for (int t = 0; t < tokens; ++t) {
                    cpu::rope(&x[std::size_t(t) * stride], nq, hd, pos0 + t, s.rope_base, s.rope_style, ff, mscale);
                    cpu::rope(&x[std::size_t(t) * stride + nq * hd], nk, hd, pos0 + t, s.rope_base, s.rope_style, ff, mscale);
                }
                // The same float expression; only the compiler's choice of sin/cos calls may differ by an ulp.
                EXPECT_LE(rel_error(download<float>(*bx, x.size()), x), 1e-6)
                    << rope_style_name(s.rope_style) << " pos0 " << pos0 << (ff ? " with factors" : "");
            }
}

TEST_P(MetalKernels, RopeFusedQKBothStylesMatchesCpu) {
    check_rope<Llama>();      // adjacent pairs
    check_rope<TestShape>();  // NeoX halves
}

TEST_P(MetalKernels, SoftmaxMatchesCpu) {
    auto dev = device_for<Llama>();
    std::mt19937 rng(5);
    for (const int n : {1, 7, 1000, 3000}) {
        auto x = random_floats(std::size_t(n), rng, 3.0f);
        auto bx = upload(*dev, x);
        softmax(dev->encoder(), view<float>(*bx), n);
        dev->finish();
        cpu::softmax(x.data(), n);
        EXPECT_LE(rel_error(download<float>(*bx, x.size()), x), 1e-6) << n;
    }
}

TEST_P(MetalKernels, ElementwiseKernelsMatchCpu) {
    auto dev = device_for<Llama>();
    std::mt19937 rng(6);
    for (const int n : {1, 255, 700})
        for (const int tokens : {1, 3}) {
            // silu_mul over fused gate+up rows.
            const int in_stride = 2 * n + 1;
            auto gu = random_floats(std::size_t(tokens) * in_stride, rng, 2.0f);
            auto bgu = upload(*dev, gu), bout = dev->new_buffer(std::size_t(tokens) * n * 4);
            silu_mul(dev->encoder(), view<float>(*bgu), view<float>(*bout), n, tokens, in_stride, n + 1, n);
            dev->finish();
            std::vector<float> ref(std::size_t(tokens) * n);
            for (int t = 0; t < tokens; ++t)
                cpu::silu_mul(&gu[std::size_t(t) * in_stride], &gu[std::size_t(t) * in_stride + n + 1], &ref[std::size_t(t) * n], n);
            // exp is within a few ulps on a GPU, not glibc's: silu_mul is exact on the emulator only.
            EXPECT_LE(rel_error(download<float>(*bout, ref.size()), ref), 1e-6) << "silu_mul " << n;

            // add, add in place, bias add.
            auto a = random_floats(std::size_t(n), rng), b = random_floats(std::size_t(n), rng);
            auto ba = upload(*dev, a), bb = upload(*dev, b), bsum = dev->new_buffer(std::size_t(n) * 4);
            add(dev->encoder(), view<float>(*ba), view<float>(*bb), view<float>(*bsum), n);
            dev->encoder().barrier();  // add_inplace overwrites what add reads
            add_inplace(dev->encoder(), view<float>(*ba), view<float>(*bb), n);
            dev->finish();
            cpu::add_inplace(a.data(), b.data(), n);
            EXPECT_EQ(download<float>(*bsum, a.size()), a);
            EXPECT_EQ(download<float>(*ba, a.size()), a);

            const int stride = n + 4;
            auto x = random_floats(std::size_t(tokens) * stride, rng);
            auto bx = upload(*dev, x), bias = upload(*dev, b);
            add_bias(dev->encoder(), view<float>(*bx), view<float>(*bias), n, tokens, stride);
            dev->finish();
            for (int t = 0; t < tokens; ++t) cpu::add_inplace(&x[std::size_t(t) * stride], b.data(), n);
            EXPECT_EQ(download<float>(*bx, x.size()), x);

            // A model's multiplier.
            scale(dev->encoder(), view<float>(*bx), 0.22f, int(x.size()));
            dev->finish();
            cpu::scale_inplace(x.data(), 0.22f, int(x.size()));
            EXPECT_EQ(download<float>(*bx, x.size()), x);
        }
}

TEST_P(MetalKernels, EmbeddingEveryWeightTypeMatchesCpu) {
    // Bit for bit: the kernels decode with the CPU dequantizers' float operations in the same order.
    AllTypesDevice d;
    std::mt19937 rng(7);
    const int vocab = 37;
    for (const DType t : metal_src::kKernelDTypes) {
        const int cols = test_cols(t), out_stride = cols + 4;
        const auto table = random_weights(t, vocab, cols, rng);
        const std::vector<std::int32_t> tokens = {0, 36, 5, 5, 17};
        auto btable = upload(*d.dev, table), btok = upload(*d.dev, tokens), bout = d.dev->new_buffer(tokens.size() * out_stride * 4);
        embed(d.dev->encoder(), t, view<std::byte>(*btable), vocab, cols, view<std::int32_t>(*btok), int(tokens.size()),
              view<float>(*bout), out_stride);
        d.dev->finish();
        const auto got = download<float>(*bout, tokens.size() * out_stride);
        std::vector<float> ref(static_cast<std::size_t>(cols));
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            dequantize_row(t, table.data() + std::size_t(tokens[i]) * row_bytes(t, cols), ref.data(), cols);
            const std::vector<float> row(got.begin() + std::ptrdiff_t(i * out_stride), got.begin() + std::ptrdiff_t(i * out_stride + cols));
            EXPECT_EQ(row, ref) << dtype_name(t) << " token " << tokens[i];
        }
    }
}

TEST_P(MetalKernels, LibraryHoldsExactlyItsWeightTypes) {
    // A Q4_K_M file's types: kernels and decoders of those, and of no other type.
    const std::uint32_t mix = metal_src::dtype_bit(DType::Q4_K) | metal_src::dtype_bit(DType::Q6_K) | metal_src::dtype_bit(DType::F32);
    const metal::LibraryPtr lib = metal::runtime_library(TestShape::shape, mix);
    std::vector<std::string> weight_kernels;
    for (std::size_t i = 0; i < lib->n_kernels; ++i) {
        const std::string name(lib->kernels[i].name);
        if (name.starts_with("matvec_") || name.starts_with("gemm_") || name.starts_with("embed_")) weight_kernels.push_back(name);
    }
    std::sort(weight_kernels.begin(), weight_kernels.end());
    EXPECT_EQ(weight_kernels, (std::vector<std::string>{"embed_f32", "embed_q4_k", "embed_q6_k", "gemm_q4_k", "gemm_q6_k",
                                                        "matvec_f32", "matvec_q4_k", "matvec_q6_k"}));
    const std::string_view text = lib->text.view();
    EXPECT_NE(text.find("q6_k_chunk_at"), std::string_view::npos);
    EXPECT_EQ(text.find("q8_0_chunk_at"), std::string_view::npos);
    EXPECT_EQ(text.find("q5_high_bits"), std::string_view::npos);
    // Every type at once fits the library's capacity, each entry point once.
    EXPECT_TRUE(metal_src::entry_points_match(*AllTypesDevice{}.lib));
    // A launch for a type the library does not hold names the types it does.
    auto dev = make_device("q4_k_m", *lib);
    auto big = dev->new_buffer(1 << 16);
    const auto f = view<float>(*big);
    expect_error([&] { matvec(dev->encoder(), lib->config, DType::Q8_0, view<std::byte>(*big), 4, 64, f, 1, 64, f, 4); },
                 "matvec: weights of type Q8_0 have no kernel in this library (it holds F32, Q4_K, Q6_K)");
    expect_error([&] { matvec(dev->encoder(), lib->config, DType::Q4_K, view<std::byte>(*big), 4, 96, f, 1, 96, f, 4); },
                 "Q4_K rows need a multiple of 256 columns");
}

TEST_P(MetalKernels, KvAppendRoundsToF16IntoRingRows) {
    auto dev = device_for<Llama>();
    std::mt19937 rng(8);
    const int kv_dim = 64, capacity = 8, tokens = 5, stride = 3 * kv_dim + 7;
    const auto src = random_floats(std::size_t(tokens) * stride, rng, 4.0f);
    auto bsrc = upload(*dev, src), bk = dev->new_buffer(capacity * kv_dim * 2), bv = dev->new_buffer(capacity * kv_dim * 2);
    kv_append(dev->encoder(), view<float>(*bsrc), view<std::uint16_t>(*bk), view<std::uint16_t>(*bv), tokens, kv_dim, stride,
              kv_dim, 2 * kv_dim, 6, capacity);  // positions 6..10 wrap to rows 6, 7, 0, 1, 2
    dev->finish();
    const auto k = download<std::uint16_t>(*bk, capacity * kv_dim), v = download<std::uint16_t>(*bv, capacity * kv_dim);
    for (int t = 0; t < tokens; ++t)
        for (int i = 0; i < kv_dim; ++i) {
            const std::size_t row = std::size_t((6 + t) % capacity) * kv_dim + i;
            ASSERT_EQ(k[row], f32_to_f16(src[std::size_t(t) * stride + kv_dim + i]));
            ASSERT_EQ(v[row], f32_to_f16(src[std::size_t(t) * stride + 2 * kv_dim + i]));
        }
}

// A random f16 cache of `capacity` rows and, for the CPU, the same positions laid out linearly.
struct Cache {
    std::vector<std::uint16_t> k, v;
};
Cache random_cache(int capacity, int kv_dim, std::mt19937& rng) {
    Cache c;
    for (const float f : random_floats(std::size_t(capacity) * kv_dim, rng)) c.k.push_back(f32_to_f16(f));
    for (const float f : random_floats(std::size_t(capacity) * kv_dim, rng)) c.v.push_back(f32_to_f16(f));
    return c;
}
// cpu::attend_head over positions [first, last] of a ring cache.
// `attention_scale` as ModelShape's: 0 is 1/sqrt(hd).
std::vector<float> cpu_attention(const Cache& c, const float* q, int heads, int kv_heads, int hd, int first, int last,
                                 int capacity, float attention_scale = 0.0f) {
    const int kv_dim = kv_heads * hd, n = last - first + 1;
    std::vector<std::uint16_t> k(std::size_t(n) * kv_dim), v(k.size());
    for (int j = 0; j < n; ++j) {
        const std::size_t row = std::size_t((first + j) % capacity) * kv_dim;
        std::copy_n(&c.k[row], kv_dim, &k[std::size_t(j) * kv_dim]);
        std::copy_n(&c.v[row], kv_dim, &v[std::size_t(j) * kv_dim]);
    }
    std::vector<float> out(std::size_t(heads) * hd), scores(static_cast<std::size_t>(n));
    const float scale = attention_scale != 0.0f ? attention_scale : 1.0f / std::sqrt(float(hd));
    for (int h = 0; h < heads; ++h) cpu::attend_head({heads, kv_heads, hd, scale}, h, q, k.data(), v.data(), 0, n - 1, scores.data(), out.data());
    return out;
}

template <class Traits>
void check_attention(int heads, int kv_heads) {
    auto dev = device_for<Traits>();
    const auto& cfg = metal_src::library<Traits>.config;
    const int hd = Traits::shape.head_dim, capacity = 48;
    std::mt19937 rng(9);
    const Cache c = random_cache(capacity, kv_heads * hd, rng);
    auto bk = upload(*dev, c.k), bv = upload(*dev, c.v);
    struct Span {
        int first, last;
    };
    for (const Span s : {Span{0, 0}, Span{0, 47}, Span{30, 60}, Span{5, 9}}) {
        const auto q = random_floats(std::size_t(heads) * hd, rng);
        auto bq = upload(*dev, q), bout = dev->new_buffer(q.size() * 4);
        attention(dev->encoder(), cfg, view<float>(*bq), view<std::uint16_t>(*bk), view<std::uint16_t>(*bv), view<float>(*bout),
                  heads, kv_heads, hd, s.first, s.last, capacity);
        dev->finish();
        const auto ref = cpu_attention(c, q.data(), heads, kv_heads, hd, s.first, s.last, capacity, Traits::shape.attention_scale);
        EXPECT_LE(rel_error(download<float>(*bout, ref.size()), ref), 2e-6) << s.first << ".." << s.last;
    }
}

TEST_P(MetalKernels, SingleQueryAttentionGqaMatchesCpu) {
    check_attention<Llama>(4, 2);
    check_attention<TestShape>(8, 2);
    check_attention<ScaledShape>(4, 2);
}

template <class Traits>
void check_flash_decode(int heads, int kv_heads) {
    auto dev = device_for<Traits>();
    const auto& cfg = metal_src::library<Traits>.config;
    const int hd = Traits::shape.head_dim;
    std::mt19937 rng(10);
    struct Case {
        int pos, window, capacity;
    };
    // Full attention from one position to past several key tiles; a window, including positions past it
    // in a ring buffer that has wrapped several times.
    for (const Case cs : {Case{0, 0, 64}, Case{1, 0, 64}, Case{40, 0, 64}, Case{300, 0, 320}, Case{10, 16, 16}, Case{100, 16, 16},
                          Case{100, 16, 24}}) {
        const Cache c = random_cache(cs.capacity, kv_heads * hd, rng);
        const auto q = random_floats(std::size_t(heads) * hd, rng);
        auto bk = upload(*dev, c.k), bv = upload(*dev, c.v), bq = upload(*dev, q), bout = dev->new_buffer(q.size() * 4);
        auto bpart = dev->new_buffer(flash_decode_partials(heads, hd) * 4);
        flash_decode(dev->encoder(), cfg, view<float>(*bq), view<std::uint16_t>(*bk), view<std::uint16_t>(*bv), view<float>(*bpart),
                     view<float>(*bout), heads, kv_heads, hd, cs.pos, cs.window, cs.capacity);
        dev->finish();
        const int first = cs.window > 0 ? std::max(0, cs.pos - cs.window + 1) : 0;
        const auto ref = cpu_attention(c, q.data(), heads, kv_heads, hd, first, cs.pos, cs.capacity, Traits::shape.attention_scale);
        EXPECT_LE(rel_error(download<float>(*bout, ref.size()), ref), 2e-6) << "pos " << cs.pos << " window " << cs.window;
    }
}

TEST_P(MetalKernels, SplitKFlashDecodeWithWindowAndRingMatchesCpu) {
    check_flash_decode<Llama>(4, 2);
    check_flash_decode<TestShape>(4, 1);
    check_flash_decode<ScaledShape>(4, 2);
}

// flash_decode from a library assembled at run time for a shape of `hd`-wide heads, `heads` query heads
// sharing `kv_heads` KV heads, against the CPU twin at `pos` in a cache of `capacity` rows.
void check_runtime_flash_decode(int hd, int heads, int kv_heads, int pos, int capacity, double tolerance, std::mt19937& rng) {
    const ModelShape s{.vocab = 32, .hidden = heads * hd, .ffn = 64, .layers = 1, .heads = heads, .kv_heads = kv_heads,
                       .head_dim = hd, .max_context = capacity};
    const metal::LibraryPtr lib = metal::runtime_library(s);
    auto dev = make_device(metal::library_label(s), *lib);
    const Cache c = random_cache(capacity, kv_heads * hd, rng);
    const auto q = random_floats(std::size_t(heads) * hd, rng);
    auto bk = upload(*dev, c.k), bv = upload(*dev, c.v), bq = upload(*dev, q), bout = dev->new_buffer(q.size() * 4);
    auto bpart = dev->new_buffer(flash_decode_partials(heads, hd) * 4);
    flash_decode(dev->encoder(), lib->config, view<float>(*bq), view<std::uint16_t>(*bk), view<std::uint16_t>(*bv), view<float>(*bpart),
                 view<float>(*bout), heads, kv_heads, hd, pos, 0, capacity);
    dev->finish();
    const auto ref = cpu_attention(c, q.data(), heads, kv_heads, hd, 0, pos, capacity);
    EXPECT_LE(rel_error(download<float>(*bout, ref.size()), ref), tolerance)
        << "head_dim " << hd << ", " << heads << " heads over " << kv_heads << " KV heads, position " << pos;
}

TEST_P(MetalKernels, FlashDecodeForEveryHeadDimAndGqaRatio) {
    std::mt19937 rng(13);
    // The head sizes of published models, each with GQA ratios 1 and 8.
    for (const int hd : {64, 80, 96, 128, 256})
        for (const auto& [heads, kv_heads] : {std::pair{8, 8}, std::pair{8, 1}})
            check_runtime_flash_decode(hd, heads, kv_heads, 300, 320, 2e-6, rng);
}

TEST_P(MetalKernels, FlashDecodeLongContext) {
    // The last position of a 32768-position context: 32768 weighted values summed in another order than
    // the CPU's sequential sum (split-K partials merged), 1e-5 measured.
    std::mt19937 rng(14);
    check_runtime_flash_decode(128, 8, 1, 32767, 32768, 3e-5, rng);
}

// flash_prefill of cs.tokens queries after cs.pos0 positions against cpu::attend_head per token over Q
// rounded to half, as the kernel's tiles hold it. The kernel also rounds each softmax weight to half
// (u = 2^-11) and divides by the sum of the rounded weights, so each output is a mean of the values with
// weights p_j (1 + e_j), |e_j| <= u: it is within u / (1 - u) max_j |v_j - o| <= 2^-10 max |v| of the
// exact mean o. Returns the largest difference over max |v|.
struct PrefillCase {
    int pos0, tokens, window, capacity;
};
double flash_prefill_error(Device& dev, const KernelConfig& cfg, int heads, int kv_heads, float attention_scale, PrefillCase cs,
                           std::mt19937& rng) {
    const int hd = cfg.head_dim;
    const Cache c = random_cache(cs.capacity, kv_heads * hd, rng);
    const int q_stride = (heads + 2 * kv_heads) * hd, out_stride = heads * hd;
    const auto q = random_floats(std::size_t(cs.tokens) * q_stride, rng);
    auto bk = upload(dev, c.k), bv = upload(dev, c.v), bq = upload(dev, q);
    auto bout = dev.new_buffer(std::size_t(cs.tokens) * out_stride * 4);
    flash_prefill(dev.encoder(), cfg, view<float>(*bq), view<std::uint16_t>(*bk), view<std::uint16_t>(*bv), view<float>(*bout), cs.tokens,
                  heads, kv_heads, hd, q_stride, out_stride, cs.pos0, cs.window, cs.capacity);
    dev.finish();
    const auto got = download<float>(*bout, std::size_t(cs.tokens) * out_stride);
    float v_max = 0;
    for (const std::uint16_t v : c.v) v_max = std::max(v_max, std::fabs(f16_to_f32(v)));
    double worst = 0;
    for (int t = 0; t < cs.tokens; ++t) {
        std::vector<float> qh(&q[std::size_t(t) * q_stride], &q[std::size_t(t) * q_stride] + heads * hd);
        for (auto& x : qh) x = round_f16(x);
        const int last = cs.pos0 + t, first = cs.window > 0 ? std::max(0, last - cs.window + 1) : 0;
        const auto ref = cpu_attention(c, qh.data(), heads, kv_heads, hd, first, last, cs.capacity, attention_scale);
        for (std::size_t i = 0; i < ref.size(); ++i)
            worst = std::max(worst, double(std::fabs(got[std::size_t(t) * out_stride + i] - ref[i])));
    }
    return noted(worst / v_max);
}

// 2^-10 for the half weights, and room for the float sums and for weights below 2^-14 (half subnormals,
// rounded to 2^-25 absolute against a denominator of at least 1) over a few hundred keys.
constexpr double kHalfWeightTolerance = 1e-3;

// Batches from the first position and after others, a token count that is not a multiple of the query
// block, long enough for several key tiles per block; a sliding window, including a ring buffer that
// has wrapped (rows position % capacity).
constexpr PrefillCase kPrefillCases[] = {{0, 1, 0, 64},  {0, 7, 0, 64},    {5, 40, 0, 64},  {0, 30, 16, 64},
                                         {20, 9, 16, 64}, {100, 9, 16, 24}, {60, 17, 16, 40}, {250, 33, 0, 320}};

template <class Traits>
void check_flash_prefill(int heads, int kv_heads) {
    auto dev = device_for<Traits>();
    std::mt19937 rng(11);
    for (const PrefillCase cs : kPrefillCases)
        EXPECT_LE(flash_prefill_error(*dev, metal_src::library<Traits>.config, heads, kv_heads, Traits::shape.attention_scale, cs, rng),
                  kHalfWeightTolerance)
            << Traits::name << " pos0 " << cs.pos0 << " tokens " << cs.tokens << " window " << cs.window << " capacity " << cs.capacity;
}

TEST_P(MetalKernels, CausalFlashPrefillWithWindowMatchesCpu) {
    check_flash_prefill<Llama>(4, 2);
    check_flash_prefill<TestShape>(4, 1);
    check_flash_prefill<ScaledShape>(4, 2);
}

TEST_P(MetalKernels, FlashPrefillForEveryHeadDimAndGqaRatio) {
    std::mt19937 rng(16);
    // Head dims that are not a multiple of 8 (the tiles zero-padded) and those of published models up to
    // the largest, which fills the most threadgroup memory; GQA ratios 1, 4 and 8.
    for (const int hd : {4, 12, 20, 64, 80, 96, 128, 256})
        for (const auto& [heads, kv_heads] : {std::pair{8, 8}, std::pair{8, 2}, std::pair{8, 1}}) {
            const ModelShape s{.vocab = 32, .hidden = heads * hd, .ffn = 64, .layers = 1, .heads = heads, .kv_heads = kv_heads,
                               .head_dim = hd, .max_context = 64};
            const metal::LibraryPtr lib = metal::runtime_library(s);
            auto dev = make_device(metal::library_label(s), *lib);
            for (const PrefillCase cs : {PrefillCase{37, 20, 0, 64}, PrefillCase{70, 11, 8, 24}})
                EXPECT_LE(flash_prefill_error(*dev, lib->config, heads, kv_heads, 0.0f, cs, rng), kHalfWeightTolerance)
                    << "head_dim " << hd << ", " << heads << " heads over " << kv_heads << " KV heads, pos0 " << cs.pos0;
        }
}

TEST_P(MetalKernels, SoftmaxSampleEqualsCpuSampler) {
    auto dev = device_for<Llama>();
    std::mt19937 rng(12);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    auto bt = dev->new_buffer(4), blp = dev->new_buffer(4);
    const auto sample = [&](Buffer& bl, int n, float t, float u) {
        softmax_sample(dev->encoder(), view<float>(bl), view<std::int32_t>(*bt), view<float>(*blp), n, t, u);
        dev->finish();
        return SampledToken{download<std::int32_t>(*bt, 1)[0], download<float>(*blp, 1)[0]};
    };
    int checked = 0;
    const auto check = [&](const std::vector<float>& logits, std::initializer_list<float> temps, std::initializer_list<float> us,
                           const char* what) {
        auto bl = upload(*dev, logits);
        const int n = int(logits.size());
        for (const float t : temps)
            for (const float u : us) {
                const SampledToken got = sample(*bl, n, t, u), ref = sample_categorical(logits, t, u);
                EXPECT_EQ(got.id, ref.id) << what << " n " << n << " t " << t << " u " << u;
                // Equal on the emulator (the same exp and log); within their ulps on a GPU.
                const float tolerance = GetParam() == Backend::metal_emu ? 0.0f : 1e-6f * std::max(1.0f, std::fabs(ref.logprob));
                EXPECT_NEAR(got.logprob, ref.logprob, tolerance) << what << " n " << n << " t " << t << " u " << u;
                ++checked;
            }
    };
    const auto temps = {0.0f, 1e-6f, 0.3f, 1.0f, 2.5f, 100.0f};
    for (const int n : {1, 5, 31, 1023, 1025, 3000}) {
        check(random_floats(std::size_t(n), rng, 4.0f), temps, {0.0f, 1e-7f, 0.5f, std::min(uni(rng), 0.9999999f), 0.9999999f}, "random");
        // Ties: logits on a coarse grid, the largest held by several tokens (greedy takes the first).
        auto tied = random_floats(std::size_t(n), rng, 2.0f);
        for (auto& l : tied) l = std::round(l);
        check(tied, temps, {0.0f, 0.3f, 0.9999999f}, "tied");
    }
    // A vocabulary as large as Qwen's: segments of 149 logits, the last threads' partly or wholly empty.
    check(random_floats(151936, rng, 3.0f), {0.0f, 1e-6f, 1.0f, 100.0f}, {0.0f, 0.5f, 0.9999999f}, "qwen vocabulary");
    EXPECT_EQ(checked, 6 * (6 * 5 + 6 * 3) + 4 * 3);

    // A logit that is not finite makes the token -1, for the host to report.
    for (const float bad : {NAN, INFINITY, -INFINITY}) {
        auto logits = random_floats(2000, rng);
        logits[1234] = bad;
        auto bl = upload(*dev, logits);
        for (const float t : {0.0f, 1.0f}) EXPECT_EQ(sample(*bl, 2000, t, 0.5f).id, -1) << bad << " t " << t;
    }
}

INSTANTIATE_TEST_SUITE_P(Executors, MetalKernels, ::testing::Values(Backend::metal_emu, Backend::metal_cuda),
                         [](const auto& info) { return std::string(info.param == Backend::metal_cuda ? "cuda" : "emulator"); });

// ---- launcher argument checks ----

TEST(MetalLaunchers, RejectInvalidArgumentsBeforeDispatch) {
    auto dev = device_for<Llama>();
    const auto& cfg = metal_src::library<Llama>.config;
    auto& e = dev->encoder();
    auto small = dev->new_buffer(16), big = dev->new_buffer(1 << 20), one = dev->new_buffer(4);
    const auto f = view<float>(*big);
    const auto h = view<std::uint16_t>(*big);
    expect_error([&] { rms_norm(e, f, f, f, 0, 1, 0, 0); }, "rms_norm: n and rows must be positive");
    expect_error([&] { rms_norm(e, view<float>(*small), f, f, 64, 1, 64, 64); }, "buffer 'x' holds 4 elements, 64 needed");
    expect_error([&] { softmax_sample(e, f, view<std::int32_t>(*one), view<float>(*one), 8, -1.0f, 0.5f); }, "temperature must be >= 0");
    expect_error([&] { softmax_sample(e, f, view<std::int32_t>(*one), view<float>(*one), 4, 1.0f, 1.0f); },
                 "random value must be in [0, 1)");
    expect_error([&] { softmax_sample(e, f, view<std::int32_t>(*one), view<float>(*one), 0, 1.0f, 0.5f); }, "n must be positive");
    expect_error([&] { softmax_sample(e, view<float>(*small), view<std::int32_t>(*one), view<float>(*one), 8, 1.0f, 0.5f); },
                 "buffer 'logits' holds 4 elements, 8 needed");
    expect_error([&] { attention(e, cfg, f, h, h, f, 4, 3, 32, 0, 5, 16); }, "must be a multiple of kv_heads");
    expect_error([&] { attention(e, cfg, f, h, h, f, 4, 2, 64, 0, 5, 16); }, "head_dim 64 is not the 32 this library was built for");
    expect_error([&] { flash_decode(e, cfg, f, h, h, f, f, 4, 2, 32, 40, 0, 16); }, "exceeds the cache's 16 rows");
    expect_error([&] { matvec(e, cfg, DType::Q8_0, view<std::byte>(*big), 4, 40, f, 1, 40, f, 4); }, "multiple of 32 columns");
    {
        const auto w = view<std::byte>(*big);
        const std::vector<WeightRows> four = {{w, 4}, {w, 4}, {w, 4}, {w, 4}}, fused = {{w, 4}, {view<std::byte>(*small), 4}};
        expect_error([&] { matvec(e, cfg, DType::F32, four, 32, f, 1, 32, f, 16); }, "matvec_f32: takes 1 to 3 stacked matrices, got 4");
        expect_error([&] { matvec(e, cfg, DType::F32, fused, 32, f, 1, 32, f, 8); }, "buffer 'w1' holds 16 elements, 512 needed");
        expect_error([&] { matvec(e, cfg, DType::F32, std::span(fused).first(1), 32, f, 1, 32, f, 3); }, "row strides too small");
        expect_error([&] { flash_decode(e, cfg, f.at(1), h, h, f, f, 4, 2, 32, 10, 0, 16); }, "q must start 16-byte aligned");
    }
    expect_error([&] { gemm(e, cfg, DType::F16, view<std::byte>(*big), 4, 64, f, 9, 64, f, 4); }, "the GEMM is for quantized weights, not F16");
    expect_error([&] { gemm(e, cfg, DType::Q5_K, view<std::byte>(*big), 4, 256, f, 9, 256, f, 4); },
                 "gemm: weights of type Q5_K have no kernel in this library (it holds F32, F16, Q8_0, Q4_0)");
    expect_error([&] { rope(e, cfg, f, f, 1, 4, 2, 16, 256, 128, 0); }, "head_dim 16");
    expect_error([&] { rope(e, cfg, f, view<float>(*small), 1, 4, 2, 32, 256, 128, 0); },
                 "buffer 'freq_factors' holds 4 elements, 16 needed");
    const std::vector<std::int32_t> bad_token = {7};
    auto btok = upload(*dev, bad_token);
    expect_error([&] { embed(e, DType::F32, view<std::byte>(*big), 5, 8, view<std::int32_t>(*btok), 1, f, 8); },
                 "token id 7 is outside [0, 5)");
}

// ---- the emulator's fault reports ----

TEST(MetalEmulator, ReportsOutOfBoundsAccess) {
    auto dev = device_for<Llama>();
    auto& e = dev->encoder();
    auto x = dev->new_buffer(64 * 4), w = dev->new_buffer(64 * 4), y = dev->new_buffer(32 * 4);  // y is half too small
    // Bypass the launcher's checks to let the kernel itself overrun.
    const metal_src::RmsNormParams p{64, 64, 64, 1, 0};
    e.set_kernel("rms_norm");
    e.set_buffer(0, *x, 0);
    e.set_buffer(1, *w, 0);
    e.set_buffer(2, *y, 0);
    e.set_bytes(3, &p, sizeof p);
    e.set_threadgroup_memory(128);
    // Threads run in a drawn order: whichever of 32..63 comes first overruns.
    expect_error([&] { e.dispatch({1}, {64}); }, "out-of-bounds access of 4 bytes (alignment 4) at byte offset 1");
    expect_error([&] { e.dispatch({1}, {64}); }, "of 'buffer 2 'y'' (128 bytes)");
}

TEST(MetalEmulator, ReportsThreadgroupMemoryOverBudget) {
    auto dev = device_for<Llama>();
    auto& e = dev->encoder();
    auto x = dev->new_buffer(64 * 4);
    const metal_src::SoftmaxParams p{64};
    e.set_kernel("softmax");
    e.set_buffer(0, *x, 0);
    e.set_bytes(1, &p, sizeof p);
    e.set_threadgroup_memory(40000);
    expect_error([&] { e.dispatch({1}, {64}); }, "threadgroup memory of 40000 bytes is over budget");
    // Too little threadgroup memory for what the kernel indexes is an out-of-bounds access of it: 32
    // simdgroups reduce through 32 floats of scratch, given 16.
    e.set_kernel("softmax");
    e.set_buffer(0, *x, 0);
    e.set_bytes(1, &p, sizeof p);
    e.set_threadgroup_memory(64);
    expect_error([&] { e.dispatch({1}, {1024}); }, "of 'threadgroup memory' (64 bytes)");
}

std::unique_ptr<emu::EmuDevice> fault_device() {
    return emu::make_device("emu-faults", emu_test::kFaultKernels, emu_test::kFaultLibraryText.view());
}

// One launch of a fault kernel (metal_fault_kernels.hpp) with p = {n, barrier}: `groups` threadgroups of
// `threads`, `tg_bytes` of threadgroup memory, the input `in` (when given) bound before the output.
struct FaultLaunch {
    std::uint32_t n = 0, barrier = 0, threads = 32, groups = 1, tg_bytes = 0;
    std::uint32_t outputs = 0;  // floats of the output; `threads` when 0
    std::vector<float> in{};
};

// Runs `kernel` as `l` says and waits for it; the output.
std::vector<float> run_fault_kernel(Device& dev, const std::string& kernel, const FaultLaunch& l) {
    const std::uint32_t outputs = l.outputs ? l.outputs : l.threads;
    auto& e = dev.encoder();
    auto out = dev.new_buffer(outputs * 4);
    std::unique_ptr<Buffer> in;
    std::uint32_t index = 0;
    e.set_kernel(kernel);
    if (!l.in.empty()) {
        in = upload(dev, l.in);
        e.set_buffer(index++, *in, 0);
    }
    e.set_buffer(index++, *out, 0);
    const emu_test::FaultParams p{l.n, l.barrier};
    e.set_bytes(index, &p, sizeof p);
    if (l.tg_bytes) e.set_threadgroup_memory(l.tg_bytes);
    e.dispatch({l.groups}, {l.threads});
    dev.finish();
    return download<float>(*out, outputs);
}

TEST(MetalEmulator, ReportsDivergentBarrier) {
    auto dev = fault_device();
    // Threads 48..63 return before the barrier.
    expect_error([&] { run_fault_kernel(*dev, "divergent_barrier", {.n = 48, .threads = 64}); },
                 "threadgroup_barrier reached by 48 of 64 threads");
    // With every thread taking the barrier the same kernel runs.
    EXPECT_NO_THROW(run_fault_kernel(*dev, "divergent_barrier", {.n = 64, .threads = 64}));
}

TEST(MetalEmulator, ReportsDivergentSimdgroupOperation) {
    auto dev = fault_device();
    // Lanes 0..7 call simd_sum, the rest wait at a barrier.
    expect_error([&] { run_fault_kernel(*dev, "divergent_simd", {.n = 8, .threads = 64}); }, "divergent simdgroup operation");
    // Uniform: every lane sums, and each sees the simdgroup's 32.
    EXPECT_EQ(run_fault_kernel(*dev, "divergent_simd", {.n = 32, .threads = 64}), std::vector<float>(64, 32.0f));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(MetalEmulator, ReportsOneSimdgroupOperationCalledFromTwoLines) {
    // Lanes 0..7 sum at one line, the rest at another: two operations on a GPU, not one of 32 lanes.
    auto dev = fault_device();
    const std::string what = error_of([&] { run_fault_kernel(*dev, "split_simd", {.n = 8}); });
    EXPECT_TRUE(contains(what, "lanes wait on both simd_sum at line ")) << what;
    EXPECT_TRUE(contains(what, "(divergent simdgroup operation)")) << what;
    EXPECT_EQ(run_fault_kernel(*dev, "split_simd", {.n = 32}), std::vector<float>(32, 32.0f));
}

TEST(MetalEmulator, ReportsThreadsWaitingAtDifferentBarriers) {
    auto dev = fault_device();
    const std::string what = error_of([&] { run_fault_kernel(*dev, "split_barrier", {.n = 16, .threads = 64}); });
    EXPECT_TRUE(contains(what, "waits at the threadgroup_barrier of line ")) << what;
    EXPECT_TRUE(contains(what, "(divergent barrier)")) << what;
    EXPECT_EQ(run_fault_kernel(*dev, "split_barrier", {.n = 64, .threads = 64}), std::vector<float>(64, 1.0f));
}

TEST(MetalEmulator, ReportsASimdgroupMatrixMultiplyWithoutEveryLane) {
    // Each lane holds only its fragment, so a multiply needs all 32 lanes' fragments.
    auto dev = fault_device();
    const std::string what = error_of([&] { run_fault_kernel(*dev, "partial_matrix", {.n = 16, .outputs = 64}); });
    EXPECT_TRUE(contains(what, "simdgroup_multiply_accumulate at line ")) << what;
    EXPECT_TRUE(contains(what, "with 16 of 32 lanes (a simdgroup matrix needs every lane)")) << what;
    EXPECT_EQ(run_fault_kernel(*dev, "partial_matrix", {.n = 32, .outputs = 64}), std::vector<float>(64, 9.0f));  // 1 + 8 * 1 * 1
}

// The fragments kernel on `dev`: lanes that load one matrix from two addresses each hold their own
// fragment (lane l: row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1), not a whole matrix of their own.
void check_fragments(Device& dev) {
    std::vector<float> in(192, 0.0f);
    for (int i = 0; i < 128; ++i) in[std::size_t(i)] = float(i);
    for (int i = 0; i < 8; ++i) in[std::size_t(128 + i * 9)] = 1.0f;  // the identity
    const auto got = run_fault_kernel(dev, "fragments", {.outputs = 64, .in = in});
    for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c) {
            const int lane = r * 4 + c / 2;
            EXPECT_EQ(got[std::size_t(r * 8 + c)], in[std::size_t((lane % 2) * 64 + r * 8 + c)]) << r << "," << c;
        }
}

TEST(MetalEmulator, SimdgroupMatrixLanesHoldOnlyTheirFragments) { check_fragments(*fault_device()); }

// An exchange kernel over `groups` threadgroups of 256 threads, with or without its barrier; the output.
std::vector<float> run_exchange(Device& dev, const std::string& kernel, bool barrier, std::uint32_t groups = 1) {
    return run_fault_kernel(dev, kernel, {.n = 256, .barrier = barrier ? 1u : 0u, .threads = 256, .groups = groups, .tg_bytes = 256 * 4});
}

TEST(MetalEmulator, ReportsARaceOnThreadgroupMemory) {
    auto dev = fault_device();
    // With the barrier every thread reads its neighbour's value, whatever order threads run in.
    const auto got = run_exchange(*dev, "exchange", true);
    for (std::uint32_t i = 0; i < 256; ++i) ASSERT_EQ(got[i], float((i + 1) % 256)) << i;
    // Without it, the read is a race even when the writer happened to run first.
    expect_error([&] { run_exchange(*dev, "exchange", false); }, "race on threadgroup memory");
    expect_error([&] { run_exchange(*dev, "exchange", false); }, "with no barrier between");
}

TEST(MetalEmulator, ReportsARaceBetweenLanesWithoutSimdgroupBarrier) {
    auto dev = fault_device();
    const auto got = run_exchange(*dev, "simd_exchange", true);
    for (std::uint32_t i = 0; i < 256; ++i) ASSERT_EQ(got[i], float(i ^ 1)) << i;
    expect_error([&] { run_exchange(*dev, "simd_exchange", false); }, "race on threadgroup memory");
}

TEST(MetalEmulator, ReportsARaceBetweenThreadgroupsOnDeviceMemory) {
    // Two threadgroups of one dispatch write the same outputs: nothing orders them.
    auto dev = fault_device();
    expect_error([&] { run_exchange(*dev, "exchange", true, 2); }, "of another threadgroup (threadgroups of one dispatch run in no order)");
}

// ---- Encoder::barrier() placement: a GPU may overlap dispatches with none between them ----

TEST(MetalEmulator, ReportsAMissingBarrierBetweenAWriterAndItsReader) {
    auto dev = device_for<Llama>();
    auto& e = dev->encoder();
    auto x = upload(*dev, std::vector<float>(256, 2.0f)), y = upload(*dev, std::vector<float>(256, 1.0f));
    auto out = dev->new_buffer(256 * 4);
    // add reads x (a const buffer) that scale wrote in the same interval.
    scale(e, view<float>(*x), 3.0f, 256);
    const std::string what = error_of([&] { add(e, view<float>(*x), view<float>(*y), view<float>(*out), 256); });
    EXPECT_TRUE(contains(what, "kernel 'add'")) << what;
    EXPECT_TRUE(contains(what, "reads buffer 0 'a' at byte offset ")) << what;
    EXPECT_TRUE(contains(what, "which kernel 'scale' wrote in the same barrier interval (no Encoder::barrier() between the two dispatches)"))
        << what;
    // The same pair with a barrier between, a finish or a commit, runs.
    dev->finish();
    scale(e, view<float>(*x), 3.0f, 256);
    e.barrier();
    add(e, view<float>(*x), view<float>(*y), view<float>(*out), 256);
    dev->finish();
    EXPECT_EQ(download<float>(*out, 256), std::vector<float>(256, 19.0f));  // 2 * 3 * 3 + 1
    scale(e, view<float>(*x), 0.5f, 256);
    dev->finish();
    add(e, view<float>(*x), view<float>(*y), view<float>(*out), 256);
    dev->finish();
    EXPECT_EQ(download<float>(*out, 256), std::vector<float>(256, 10.0f));
    // A commit submits a command buffer that runs before the next one: a barrier too.
    scale(e, view<float>(*x), 2.0f, 256);
    dev->commit();
    add(e, view<float>(*x), view<float>(*y), view<float>(*out), 256);
    dev->finish();
    EXPECT_EQ(download<float>(*out, 256), std::vector<float>(256, 19.0f));
}

TEST(MetalEmulator, DispatchesOnDisjointElementsOfOneBufferNeedNoBarrier) {
    // Two launches bound to one buffer (the first's binding reaches its end) touch different halves: what
    // counts is the elements they access, not what they are bound to.
    auto dev = device_for<Llama>();
    auto& e = dev->encoder();
    auto x = upload(*dev, std::vector<float>(512, 1.0f));
    scale(e, view<float>(*x), 2.0f, 256);
    scale(e, view<float>(*x, 256), 4.0f, 256);
    dev->finish();
    const auto got = download<float>(*x, 512);
    for (std::size_t i = 0; i < 512; ++i) ASSERT_EQ(got[i], i < 256 ? 2.0f : 4.0f) << i;
}

TEST(MetalEmulator, ReportsAMissingBarrierBeforeAnOverwriteOfWhatWasRead) {
    auto dev = device_for<Llama>();
    auto& e = dev->encoder();
    auto x = upload(*dev, std::vector<float>(256, 2.0f)), y = upload(*dev, std::vector<float>(256, 1.0f));
    auto out = dev->new_buffer(256 * 4);
    add(e, view<float>(*x), view<float>(*y), view<float>(*out), 256);
    const std::string what = error_of([&] { scale(e, view<float>(*y), 3.0f, 256); });
    EXPECT_TRUE(contains(what, "kernel 'scale'")) << what;
    EXPECT_TRUE(contains(what, "overwrites buffer 0 'x' at byte offset ")) << what;
    EXPECT_TRUE(contains(what, "which kernel 'add' read in the same barrier interval")) << what;
}

// The half_math kernel on `dev`: half arithmetic rounds each result to half, float arithmetic does not.
void check_half_math(Device& dev) {
    for (const std::uint32_t in_half : {1u, 0u}) {
        const float got = run_fault_kernel(dev, "half_math", {.n = in_half})[0];
        // In half: (1 + 2^-10)^2 rounds to 1 + 2^-9, and adding 2^-11 (a tie) rounds to even, 1 + 2^-9 again.
        if (in_half) EXPECT_EQ(got, 1.001953125f);
        else EXPECT_NEAR(got, 1.0024423599f, 1e-7);
    }
}

TEST(MetalEmulator, HalfArithmeticRoundsToHalf) { check_half_math(*fault_device()); }

// The min_max kernel on `dev`: MSL's float max and min return the number when the other operand is NaN.
void check_min_max(Device& dev) {
    const std::vector<float> in{std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f};
    EXPECT_EQ(run_fault_kernel(dev, "min_max", {.outputs = 4, .in = in}), (std::vector<float>{1.0f, 1.0f, -1.0f, -1.0f}));
}

TEST(MetalEmulator, FloatMaxAndMinAreFmaxAndFmin) { check_min_max(*fault_device()); }

TEST(MetalEmulator, RunsThreadsAndThreadgroupsInASeededOrder) {
    // The order is drawn, not thread order; the same seed draws the same order (a failure replays), and
    // FORGE_EMU_SEED draws another.
    const auto draw = [] {
        emu::GroupRunner runner;
        std::vector<std::uint32_t> order;
        runner.shuffled(order, 256);
        return order;
    };
    const auto first = draw();
    std::vector<std::uint32_t> identity(256);
    for (std::uint32_t i = 0; i < 256; ++i) identity[i] = i;
    EXPECT_NE(first, identity);
    EXPECT_TRUE(std::is_permutation(first.begin(), first.end(), identity.begin()));
    EXPECT_EQ(draw(), first);
    ::setenv("FORGE_EMU_SEED", "12345", 1);
    const auto seeded = draw();
    ::unsetenv("FORGE_EMU_SEED");
    EXPECT_NE(seeded, first);
}

// ---- the CUDA executor under compute-sanitizer ----

std::unique_ptr<Device> cuda_fault_device() {
    return cuda::make_device("faults", emu_test::kFaultKernels, emu_test::kFaultLibraryText.view());
}

// The probe that RacecheckSeesAMissingBarrier runs under compute-sanitizer: the exchange kernel, with its
// barrier unless $FORGE_CUDA_PROBE is "no_barrier"; with it, every thread gets its neighbour's value.
TEST(CudaExecutor, RunsTheProbeKernel) {
    if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    const char* probe = std::getenv("FORGE_CUDA_PROBE");
    const bool barrier = !probe || std::string(probe) != "no_barrier";
    auto dev = cuda_fault_device();
    const auto got = run_exchange(*dev, "exchange", barrier);
    if (!barrier) return;
    for (std::uint32_t i = 0; i < 256; ++i) ASSERT_EQ(got[i], float((i + 1) % 256)) << i;
}

TEST(CudaExecutor, FloatMaxAndMinAreFmaxAndFmin) {
    if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    check_min_max(*cuda_fault_device());
}

TEST(CudaExecutor, SimdgroupMatrixLanesHoldOnlyTheirFragments) {
    if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    check_fragments(*cuda_fault_device());
}

TEST(CudaExecutor, HalfArithmeticRoundsToHalf) {
    if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    check_half_math(*cuda_fault_device());
}

// compute-sanitizer's racecheck over this binary's probe case: the kernel with its barrier has no hazard,
// the one without it is reported. (The emulator runs both without a word: its threads take turns.)
TEST(CudaExecutor, RacecheckSeesAMissingBarrier) {
    if (const std::string why = cuda::jit::unavailable_reason(); !why.empty()) GTEST_SKIP() << "no CUDA executor here: " << why;
    std::string sanitizer = toolchain::find_program("compute-sanitizer");
    if (sanitizer.empty()) sanitizer = toolchain::find_program("/usr/local/cuda/bin/compute-sanitizer");
    if (sanitizer.empty()) GTEST_SKIP() << "compute-sanitizer is not installed";
    const auto hazards = [&](const std::string& probe) {
        const auto r = test::run_process({"env", "FORGE_CUDA_PROBE=" + probe, sanitizer, "--tool", "racecheck",
                                          std::filesystem::read_symlink("/proc/self/exe").string(),
                                          "--gtest_filter=CudaExecutor.RunsTheProbeKernel"});
        const auto at = r.out.find("RACECHECK SUMMARY: ");
        EXPECT_NE(at, std::string::npos) << r.out << r.err;
        EXPECT_NE(r.out.find("[  PASSED  ] 1 test"), std::string::npos) << r.out;
        return at == std::string::npos ? -1 : std::atoi(r.out.c_str() + at + 19);
    };
    EXPECT_EQ(hazards("barrier"), 0);
    EXPECT_GT(hazards("no_barrier"), 0);
}

}  // namespace
}  // namespace forge::metal
