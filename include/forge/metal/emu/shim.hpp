#pragma once
// MSL as C++: what forge's generated MSL text needs to compile as C++20 and run on the emulator's
// fibers. Address-space qualifiers (device, thread) and `kernel` are empty (`constant` is const); DPTR
// and TPTR are checked pointers of distinct types, TPTR's accesses also race-checked (runtime.hpp); half
// is software IEEE binary16 with round-to-nearest-even (forge::f32_to_f16, the same rounding the CPU KV
// cache uses), its arithmetic rounding each result to half; simdgroup and threadgroup operations go to
// the fiber scheduler, with the MSL line that called them (__builtin_LINE: lanes of one operation must be
// at the same line); a simdgroup matrix is distributed over its lanes as the CUDA executor's is (two of
// the 64 elements each), and a multiply gathers the operands' fragments from every lane. Math functions
// are the float overloads of <cmath>, fast:: variants included.
//
// Include this before the MSL text; a translation unit holding MSL must silence only attribute
// warnings ([[buffer(0)]] and the built-in attributes mean nothing to a C++ compiler).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "forge/core/half.hpp"
#include "forge/metal/emu/runtime.hpp"

// MSL scalar spellings. glibc's <sys/types.h> may declare uint/ushort/ulong too; redeclaring a typedef
// as the same type is allowed.
using uint = unsigned int;
using uchar = unsigned char;
using ushort = unsigned short;
using ulong = unsigned long;

namespace metal {

struct half {
    std::uint16_t bits = 0;
    half() = default;
    half(float f) : bits(forge::f32_to_f16(f)) {}
    operator float() const { return forge::f16_to_f32(bits); }
};
static_assert(sizeof(half) == 2 && alignof(half) == 2);

// half with half computes in half, as MSL does: each result rounds to half. (With a float operand, the
// half converts to float and the result is a float, also as in MSL.)
#define FORGE_EMU_HALF_OP(op)                                                                                   \
    inline half operator op(half a, half b) { return half(float(a) op float(b)); }                              \
    inline half& operator op##=(half& a, half b) { return a = a op b; }
FORGE_EMU_HALF_OP(+)
FORGE_EMU_HALF_OP(-)
FORGE_EMU_HALF_OP(*)
FORGE_EMU_HALF_OP(/)
#undef FORGE_EMU_HALF_OP
inline half operator-(half a) { return half(-float(a)); }

#define FORGE_MSL_FN
#include "forge/metal/msl/vectors.inc"
#undef FORGE_MSL_FN

// Bit reinterpretation between equal-size types.
template <class To, class From>
To as_type(const From& v) {
    static_assert(sizeof(To) == sizeof(From), "as_type needs types of equal size");
    To out;
    std::memcpy(static_cast<void*>(&out), &v, sizeof(To));
    return out;
}

// ---- math: the float overloads ----
inline float exp(float x) { return std::exp(x); }
inline float log(float x) { return std::log(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float pow(float x, float y) { return std::pow(x, y); }
inline float cos(float x) { return std::cos(x); }
inline float sin(float x) { return std::sin(x); }
inline float fabs(float x) { return std::fabs(x); }
inline float fmax(float a, float b) { return std::fmax(a, b); }
inline float fmin(float a, float b) { return std::fmin(a, b); }
template <class T>
T max(T a, T b) {
    return a > b ? a : b;
}
template <class T>
T min(T a, T b) {
    return a < b ? a : b;
}
// On floats MSL's max and min are fmax and fmin: a NaN loses to a number.
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
// A writable element (a race-checked Ref) takes part as its value.
template <class T>
T max(forge::metal::emu::Ref<T> a, T b) {
    return max(T(a), b);
}
template <class T>
T max(T a, forge::metal::emu::Ref<T> b) {
    return max(a, T(b));
}
template <class T>
T min(forge::metal::emu::Ref<T> a, T b) {
    return min(T(a), b);
}
template <class T>
T min(T a, forge::metal::emu::Ref<T> b) {
    return min(a, T(b));
}
namespace fast {
inline float exp(float x) { return std::exp(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
}  // namespace fast
namespace precise {
inline float exp(float x) { return std::exp(x); }
}  // namespace precise

// ---- synchronisation ----
enum class mem_flags : unsigned { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(unsigned(a) | unsigned(b)); }

// The scheduler of the kernel running on this OS thread: each kernel's entry sets it (see emu/jit.hpp).
inline thread_local const forge::metal::emu::FiberOps* tls_fiber_ops = nullptr;
inline const forge::metal::emu::FiberOps& fiber_ops() {
    if (!tls_fiber_ops) throw forge::metal::emu::KernelFault{"a simdgroup or threadgroup operation outside a running kernel"};
    return *tls_fiber_ops;
}

inline void threadgroup_barrier(mem_flags flags, unsigned site = __builtin_LINE()) {
    fiber_ops().threadgroup_barrier(fiber_ops().runner, unsigned(flags), site);
}
inline void simdgroup_barrier(mem_flags, unsigned site = __builtin_LINE()) {
    fiber_ops().simd_op(fiber_ops().runner, forge::metal::emu::SimdOp::barrier, 0, forge::metal::emu::ValueKind::u32, 0, site);
}

template <class T>
constexpr forge::metal::emu::ValueKind value_kind() {
    static_assert(sizeof(T) == 4 && (std::is_same_v<T, float> || std::is_integral_v<T>),
                  "emulated simdgroup operations take 32-bit scalars");
    if constexpr (std::is_same_v<T, float>) return forge::metal::emu::ValueKind::f32;
    else if constexpr (std::is_signed_v<T>) return forge::metal::emu::ValueKind::i32;
    else return forge::metal::emu::ValueKind::u32;
}
template <class T>
T simd_collective(forge::metal::emu::SimdOp op, T v, unsigned arg, unsigned site) {
    return as_type<T>(fiber_ops().simd_op(fiber_ops().runner, op, as_type<std::uint32_t>(v), value_kind<T>(), arg, site));
}
template <class T>
T simd_sum(T v, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::sum, v, 0, site);
}
template <class T>
T simd_max(T v, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::max, v, 0, site);
}
template <class T>
T simd_min(T v, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::min, v, 0, site);
}
template <class T>
T simd_shuffle(T v, ushort lane, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::shuffle, v, lane, site);
}
template <class T>
T simd_shuffle_xor(T v, ushort mask, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::shuffle_xor, v, mask, site);
}
template <class T>
T simd_broadcast(T v, ushort lane, unsigned site = __builtin_LINE()) {
    return simd_collective(forge::metal::emu::SimdOp::broadcast, v, lane, site);
}

// ---- simdgroup matrices: lane l holds row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 ----
template <class T, int Cols, int Rows>
struct simdgroup_matrix {
    static_assert(Cols == 8 && Rows == 8, "forge's kernels use 8x8 simdgroup matrices");
    T e[2]{};
};
using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;

inline std::uint32_t fragment_lane() { return fiber_ops().lane(fiber_ops().runner); }

template <class T, int Cols, int Rows>
simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T v) {
    simdgroup_matrix<T, Cols, Rows> r;
    r.e[0] = r.e[1] = v;
    return r;
}

// Element (r, c) is src[(origin.y + r) * stride + origin.x + c], or with transpose src[(origin.y + c) *
// stride + origin.x + r]. The current lane's two elements: where they lie from the origin.
struct Fragment {
    std::size_t at[2];
    Fragment(std::size_t stride, bool transpose) {
        const std::uint32_t lane = fragment_lane();
        for (std::size_t i = 0; i < 2; ++i) {
            const std::size_t r = lane / 4, c = lane % 4 * 2 + i;
            at[i] = transpose ? c * stride + r : r * stride + c;
        }
    }
};

// A load or store is one collective access: the whole footprint is bounds-checked, and each lane reads
// or writes its own fragment, which is what the race detector hears of.
template <class Pointer>
auto* collective_span(const Pointer& origin, std::size_t stride, const Fragment& f, bool write) {
    auto* base = origin.span(std::size_t(7) * stride + 8);
    for (const std::size_t at : f.at) origin.note(at, write);
    return base;
}

template <class T, int Cols, int Rows, template <class> class Pointer, class P>
void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, const Pointer<P>& src, ulong stride = Cols, ulong2 origin = ulong2(0, 0),
                    bool transpose = false) {
    const Fragment f(stride, transpose);
    const P* base = collective_span(src + origin.y * stride + origin.x, stride, f, false);
    for (std::size_t i = 0; i < 2; ++i) d.e[i] = T(base[f.at[i]]);
}

template <class T, int Cols, int Rows, template <class> class Pointer, class P>
void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, const Pointer<P>& dst, ulong stride = Cols, ulong2 origin = ulong2(0, 0),
                     bool transpose = false) {
    const Fragment f(stride, transpose);
    P* base = collective_span(dst + origin.y * stride + origin.x, stride, f, true);
    for (std::size_t i = 0; i < 2; ++i) base[f.at[i]] = P(a.e[i]);
}

// d = a * b + c (d may be c): every lane's fragments of a and b go to every lane (one collective, so all
// 32 lanes must take part), and each lane sums its two elements in k order from c, as the CUDA executor does.
template <class T, class U, int K, int M, int N>
void simdgroup_multiply_accumulate(simdgroup_matrix<T, N, M>& d, const simdgroup_matrix<U, K, M>& a,
                                   const simdgroup_matrix<U, N, K>& b, const simdgroup_matrix<T, N, M>& c,
                                   unsigned site = __builtin_LINE()) {
    const float mine[4] = {float(a.e[0]), float(a.e[1]), float(b.e[0]), float(b.e[1])};
    float all[32 * 4];
    fiber_ops().simd_gather(fiber_ops().runner, reinterpret_cast<const std::uint32_t*>(mine), reinterpret_cast<std::uint32_t*>(all), 4, site);
    const std::uint32_t lane = fragment_lane(), i = lane / 4, j = lane % 4 * 2;
    float s0 = float(c.e[0]), s1 = float(c.e[1]);
    for (std::uint32_t k = 0; k < 8; ++k) {
        const float aik = all[(i * 4 + k / 2) * 4 + k % 2];
        s0 += aik * all[(k * 4 + j / 2) * 4 + 2];
        s1 += aik * all[(k * 4 + j / 2) * 4 + 3];
    }
    d.e[0] = T(s0);
    d.e[1] = T(s1);
}

}  // namespace metal

// MSL keywords and forge's pointer seam. `threadgroup` stays undefined: it spells the [[threadgroup(0)]]
// attribute, and forge's kernels name threadgroup pointers only through TPTR/TCAST.
#define kernel
#define device
#define thread
#define constant const
#define DPTR(T) ::forge::metal::emu::Ptr<T>
#define TPTR(T) ::forge::metal::emu::TgPtr<T>
#define DCAST(T, p) ::forge::metal::emu::ptr_cast<T>(p)
#define TCAST(T, p) ::forge::metal::emu::tg_ptr_cast<T>(p)
