#pragma once
// MSL as CUDA: what forge's generated MSL text needs to compile with nvcc and run on an NVIDIA GPU, a
// SIMT machine like Apple's. A simdgroup is a warp (both 32 lanes), threadgroup memory is shared memory,
// threadgroup_barrier is __syncthreads, simd_* are warp shuffles, and a simdgroup matrix is distributed
// over its simdgroup's lanes (two of the 64 elements each: Apple leaves the distribution unspecified, so
// any one that load, store and multiply agree on is faithful). `half` converts with the GPU's
// round-to-nearest-even instructions. Address-space words are empty: CUDA's generic pointers reach both
// device and shared memory.
//
// The generated translation unit (cuda/jit.hpp) includes this, then the MSL text inside namespace
// forge_msl, whose types hide CUDA's global ones of the same names (uint2, float4, min, exp...).
// Compiled by nvcc only (hence .cuh: the header self-containment check compiles every .hpp as C++).
#include <cstdint>
#include <cstring>

namespace metal {}  // the MSL text's `using namespace metal`

namespace forge_msl {

using uint = unsigned int;
using uchar = unsigned char;
using ushort = unsigned short;
using ulong = unsigned long;

struct half {
    unsigned short bits;
    half() = default;
    __device__ half(float f) { asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(f)); }
    __device__ operator float() const {
        float f;
        asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits));
        return f;
    }
};
static_assert(sizeof(half) == 2, "half is 16 bits");

// half with half computes in half, as MSL does: each result rounds to half.
#define FORGE_CUDA_HALF_OP(op)                                                                                  \
    __device__ inline half operator op(half a, half b) { return half(float(a) op float(b)); }                   \
    __device__ inline half& operator op##=(half& a, half b) { return a = a op b; }
FORGE_CUDA_HALF_OP(+)
FORGE_CUDA_HALF_OP(-)
FORGE_CUDA_HALF_OP(*)
FORGE_CUDA_HALF_OP(/)
#undef FORGE_CUDA_HALF_OP
__device__ inline half operator-(half a) { return half(-float(a)); }

#define FORGE_MSL_FN __device__
#include "forge/metal/msl/vectors.inc"
#undef FORGE_MSL_FN

template <class To, class From>
__device__ To as_type(const From& v) {
    static_assert(sizeof(To) == sizeof(From), "as_type needs types of equal size");
    To out;
    memcpy(static_cast<void*>(&out), &v, sizeof(To));
    return out;
}

// ---- math: the float overloads (MSL's precise functions; CUDA's are within its documented ulps) ----
__device__ inline float exp(float x) { return ::expf(x); }
__device__ inline float log(float x) { return ::logf(x); }
__device__ inline float sqrt(float x) { return ::sqrtf(x); }
__device__ inline float rsqrt(float x) { return 1.0f / ::sqrtf(x); }
__device__ inline float pow(float x, float y) { return ::powf(x, y); }
__device__ inline float cos(float x) { return ::cosf(x); }
__device__ inline float sin(float x) { return ::sinf(x); }
__device__ inline float fabs(float x) { return ::fabsf(x); }
__device__ inline float fmax(float a, float b) { return ::fmaxf(a, b); }
__device__ inline float fmin(float a, float b) { return ::fminf(a, b); }
template <class T>
__device__ T max(T a, T b) {
    return a > b ? a : b;
}
template <class T>
__device__ T min(T a, T b) {
    return a < b ? a : b;
}
// On floats MSL's max and min are fmax and fmin: a NaN loses to a number.
__device__ inline float max(float a, float b) { return ::fmaxf(a, b); }
__device__ inline float min(float a, float b) { return ::fminf(a, b); }
namespace fast {
__device__ inline float exp(float x) { return ::expf(x); }
__device__ inline float rsqrt(float x) { return 1.0f / ::sqrtf(x); }
}  // namespace fast
namespace precise {
__device__ inline float exp(float x) { return ::expf(x); }
}  // namespace precise

// ---- synchronisation ----
enum class mem_flags : unsigned { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
__device__ constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(unsigned(a) | unsigned(b)); }

__device__ inline void threadgroup_barrier(mem_flags) { __syncthreads(); }
__device__ inline void simdgroup_barrier(mem_flags) { __syncwarp(); }

// Simdgroup operations take every lane of the warp: forge's kernels call them with whole simdgroups
// (compute-sanitizer's synccheck reports a call some lanes miss).
inline constexpr unsigned kAllLanes = 0xffffffffu;

// Warps are made of consecutive linear thread indices, as simdgroups are.
__device__ inline unsigned thread_index() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
__device__ inline unsigned lane_id() { return thread_index() % 32u; }

template <class T>
__device__ T simd_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kAllLanes, v, o);
    return v;
}
template <class T>
__device__ T simd_max(T v) {
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kAllLanes, v, o));
    return v;
}
template <class T>
__device__ T simd_min(T v) {
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(kAllLanes, v, o));
    return v;
}
template <class T>
__device__ T simd_shuffle(T v, ushort lane) {
    return __shfl_sync(kAllLanes, v, lane);
}
template <class T>
__device__ T simd_shuffle_xor(T v, ushort mask) {
    return __shfl_xor_sync(kAllLanes, v, mask);
}
template <class T>
__device__ T simd_broadcast(T v, ushort lane) {
    return __shfl_sync(kAllLanes, v, lane);
}

// ---- simdgroup matrices: lane l holds row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 ----
template <class T, int Cols, int Rows>
struct simdgroup_matrix {
    static_assert(Cols == 8 && Rows == 8, "forge's kernels use 8x8 simdgroup matrices");
    T e[2];
};
using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;

__device__ inline uint fragment_row() { return lane_id() / 4u; }
__device__ inline uint fragment_col() { return lane_id() % 4u * 2u; }

template <class T, int Cols, int Rows>
__device__ simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T v) {
    simdgroup_matrix<T, Cols, Rows> r;
    r.e[0] = r.e[1] = v;
    return r;
}

// Element (r, c) is src[(origin.y + r) * stride + origin.x + c], or with transpose src[(origin.y + c) *
// stride + origin.x + r].
template <class T, int Cols, int Rows, class P>
__device__ void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const P* src, ulong stride = Cols, ulong2 origin = ulong2(0, 0),
                               bool transpose = false) {
    const P* base = src + origin.y * stride + origin.x;
    for (uint i = 0; i < 2; ++i) {
        const uint r = fragment_row(), c = fragment_col() + i;
        d.e[i] = T(transpose ? base[c * stride + r] : base[r * stride + c]);
    }
}

template <class T, int Cols, int Rows, class P>
__device__ void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, P* dst, ulong stride = Cols, ulong2 origin = ulong2(0, 0),
                                bool transpose = false) {
    P* base = dst + origin.y * stride + origin.x;
    for (uint i = 0; i < 2; ++i) {
        const uint r = fragment_row(), c = fragment_col() + i;
        (transpose ? base[c * stride + r] : base[r * stride + c]) = P(a.e[i]);
    }
}

// d = a * b + c (d may be c): each lane gathers row i of `a` and its two columns of `b` from the lanes
// holding them, summing in k order from c, as the emulator does.
template <class T, class U, int K, int M, int N>
__device__ void simdgroup_multiply_accumulate(simdgroup_matrix<T, N, M>& d, const simdgroup_matrix<U, K, M>& a,
                                              const simdgroup_matrix<U, N, K>& b, const simdgroup_matrix<T, N, M>& c) {
    const uint i = fragment_row(), j = fragment_col();
    float s0 = float(c.e[0]), s1 = float(c.e[1]);
    for (uint k = 0; k < 8; ++k) {
        const float aik = float(__shfl_sync(kAllLanes, float(a.e[k % 2]), int(i * 4 + k / 2)));
        const float bk0 = float(__shfl_sync(kAllLanes, float(b.e[0]), int(k * 4 + j / 2)));
        const float bk1 = float(__shfl_sync(kAllLanes, float(b.e[1]), int(k * 4 + j / 2)));
        s0 += aik * bk0;
        s1 += aik * bk1;
    }
    d.e[0] = T(s0);
    d.e[1] = T(s1);
}

}  // namespace forge_msl

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// MSL keywords and forge's pointer seam. `threadgroup` stays undefined: it spells the [[threadgroup(0)]]
// attribute, and forge's kernels name threadgroup pointers only through TPTR/TCAST; so does `device`,
// which CUDA's own __device__ expands to (forge's kernels name device pointers only through DPTR/DCAST).
// The MSL text's helpers are `inline` functions: on the GPU they must be device functions.
#define kernel __device__
#define thread
#define constant const
#define inline __device__ inline
#define DPTR(T) T*
#define TPTR(T) T*
#define DCAST(T, p) ((T*)(p))
#define TCAST(T, p) ((T*)(p))
