#pragma once
// Portable micro-kernels: plain C++ the compiler may vectorise, for targets without a SIMD kernel and
// as the fallback every SIMD kernel is tested against.
#include <algorithm>
#include <cmath>

#include "forge/core/half.hpp"
#include "forge/cpu/kernels/kernel.hpp"
#include "forge/quant/q4_0.hpp"
#include "forge/quant/q8_0.hpp"

namespace forge::cpu {

// a + w * x, rounded once where the target has FMA and twice where it has none. Left to itself GCC
// fuses or not as its vectoriser sees fit, which differed between tile shapes: a token's result then
// depended on how many tokens shared its tile.
inline float multiply_add(float w, float x, float a) {
#if defined(__FMA__) || defined(__aarch64__)
    return std::fma(w, x, a);
#else
    return a + w * x;
#endif
}

// F32 / F16 weights times float activations, eight partial sums per output.
template <DType W>
    requires(W == DType::F32 || W == DType::F16)
struct Kernel<isa::Portable, W> {
    static constexpr int kStep = 8, kRows = 4, kTokens = 4;
    using Input = FloatRows;
    struct Acc {
        float v[kStep];
    };
    using Vec = Acc;

    static int steps(int cols) { return (cols + kStep - 1) / kStep; }
    static Acc zero() { return {}; }
    static Vec load_w(const std::byte* row, int s, int cols) {
        Vec out{};
        const int n = std::min(kStep, cols - s * kStep);
        for (int k = 0; k < n; ++k) {
            const std::size_t i = std::size_t(s * kStep + k);
            if constexpr (W == DType::F32) std::memcpy(&out.v[k], row + 4 * i, 4);
            else out.v[k] = f16_to_f32(load_u16(row + 2 * i));
        }
        return out;
    }
    static Vec load_x(const Input& in, int t, int s) {
        Vec out{};
        const int n = std::min(kStep, in.cols - s * kStep);
        std::copy_n(in.row(t) + s * kStep, n, out.v);
        return out;
    }
    static void madd(Acc& a, const Vec& w, const Vec& x) {
        for (int k = 0; k < kStep; ++k) a.v[k] = multiply_add(w.v[k], x.v[k], a.v[k]);
    }
    static float reduce(const Acc& a) {
        return ((a.v[0] + a.v[4]) + (a.v[1] + a.v[5])) + ((a.v[2] + a.v[6]) + (a.v[3] + a.v[7]));
    }
};

// Q8_0 / Q4_0 weights times Q8 activations: an exact integer dot per block, scaled once.
template <DType W>
    requires(W == DType::Q8_0 || W == DType::Q4_0)
struct Kernel<isa::Portable, W> {
    static constexpr int kStep = 32, kRows = 4, kTokens = 4;
    static constexpr Q8Layout kLayout{};
    using Input = Q8Rows;
    using Acc = float;
    struct WVec {
        std::int8_t q[32];
        float d;
    };
    struct XVec {
        const std::int8_t* q;
        float d;
    };
    static constexpr std::size_t kBlockBytes = W == DType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);

    static int steps(int cols) { return cols / kStep; }
    static Acc zero() { return 0.0f; }
    static WVec load_w(const std::byte* row, int s, int) {
        const std::byte* b = row + std::size_t(s) * kBlockBytes;
        WVec out;
        out.d = f16_to_f32(load_u16(b));
        if constexpr (W == DType::Q8_0) {
            std::memcpy(out.q, b + 2, 32);
        } else {
            for (int j = 0; j < 16; ++j) {
                const auto v = static_cast<std::uint8_t>(b[2 + j]);
                out.q[j] = static_cast<std::int8_t>((v & 0x0f) - 8);
                out.q[j + 16] = static_cast<std::int8_t>((v >> 4) - 8);
            }
        }
        return out;
    }
    static XVec load_x(const Input& in, int t, int s) { return {in.qs(t, s), in.d(t, s)[0]}; }
    static void madd(Acc& a, const WVec& w, const XVec& x) {
        std::int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += std::int32_t(w.q[j]) * std::int32_t(x.q[j]);
        a = multiply_add(float(sum), w.d * x.d, a);
    }
    static float reduce(Acc a) { return a; }
};

}  // namespace forge::cpu
