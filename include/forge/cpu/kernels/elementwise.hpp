#pragma once
// SwiGLU's silu_mul and softmax with a vector exp: std::exp per element cost a decode step more than
// some of its matmuls. The exp is Cephes' expf polynomial (within 2 ulp of std::exp over the range used),
// written once over GCC/Clang vector extensions, which compile to whatever SIMD the target has; a row's
// tail runs the same polynomial on single floats.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

namespace forge::cpu {

namespace detail {

// The target's widest float vector, so vectors pass in registers (-Wpsabi warns about wider ones).
#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
#elif defined(__AVX__)
inline constexpr int kLanes = 8;
#else
inline constexpr int kLanes = 4;
#endif
using f32v = float __attribute__((vector_size(kLanes * 4)));
using i32v = std::int32_t __attribute__((vector_size(kLanes * 4)));

inline i32v to_int(f32v v) { return __builtin_convertvector(v, i32v); }
inline std::int32_t to_int(float v) { return static_cast<std::int32_t>(v); }
inline f32v as_float(i32v v) { return std::bit_cast<f32v>(v); }
inline float as_float(std::int32_t v) { return std::bit_cast<float>(v); }
inline f32v clamp(f32v x, float lo, float hi) {
    x = x < lo ? f32v{} + lo : x;
    return x > hi ? f32v{} + hi : x;
}
inline float clamp(float x, float lo, float hi) { return std::min(std::max(x, lo), hi); }

// e^x for x in float's range (clamped to where 2^n stays a normal float); NaN gives NaN. A NaN never
// reaches the integer conversion, where it would be undefined behaviour.
template <class V>
V exp(V x_in) {
    const V x = clamp(x_in == x_in ? x_in : V{} + 0.0f, -87.0f, 88.0f);
    // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |n| < 2^22), r = x - n ln 2 in two parts.
    const V n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const V r = x - n * 0.693359375f + n * 2.12194440e-4f;
    V p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const V y = p * r * r + r + 1.0f;
    const V e = y * as_float((to_int(n) + 127) << 23);
    return x_in == x_in ? e : x_in;
}

inline f32v load(const float* p) {
    f32v v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store(float* p, f32v v) { std::memcpy(p, &v, sizeof v); }

}  // namespace detail

// out = silu(gate) * up, as cpu::silu_mul.
inline void silu_mul_fast(const float* gate, const float* up, float* out, int n) {
    using namespace detail;
    int i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const f32v g = load(gate + i);
        store(out + i, g / (1.0f + exp(-g)) * load(up + i));
    }
    for (; i < n; ++i) out[i] = gate[i] / (1.0f + exp(-gate[i])) * up[i];
}

// In-place softmax, as cpu::softmax.
inline void softmax_fast(float* x, int n) {
    using namespace detail;
    // The largest score, lanes first: a max is the same whichever order finds it.
    f32v mv = f32v{} + x[0];
    int i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const f32v v = load(x + i);
        mv = v > mv ? v : mv;
    }
    float m = x[0];
    for (int k = 0; k < kLanes; ++k) m = std::max(m, mv[k]);
    for (; i < n; ++i) m = std::max(m, x[i]);
    f32v acc{};
    i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const f32v e = exp(load(x + i) - m);
        store(x + i, e);
        acc += e;
    }
    float sum = 0.0f;
    for (int k = 0; k < kLanes; ++k) sum += acc[k];
    for (; i < n; ++i) sum += (x[i] = exp(x[i] - m));
    const float inv = 1.0f / sum;
    for (int k = 0; k < n; ++k) x[k] *= inv;
}

}  // namespace forge::cpu
