#pragma once
// What the CPU running this program can execute, asked of the CPU itself (CPUID, and XGETBV for the
// register state the operating system saves): a kernel set compiled for more than the build's target
// flags runs only where this says its instructions exist.
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace forge::cpu {

struct CpuFeatures {
    bool avx2 = false;    // AVX2 with FMA and F16C, YMM state saved by the OS
    bool avx512 = false;  // AVX-512 F, BW, VL and VNNI with BMI2, ZMM and mask state saved by the OS
    bool amx = false;     // and AMX-TILE with AMX-INT8, tile state saved by the OS and granted to this process
};

// Linux gives a process the AMX tile registers only once it asks (arch_prctl ARCH_REQ_XCOMP_PERM for
// XTILEDATA); until then a tile instruction faults. Asking again is harmless.
inline bool amx_granted() {
#if defined(__x86_64__) && defined(__linux__)
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return ::syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
}

inline CpuFeatures cpu_features() {
    CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx) return f;
    std::uint32_t xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u;     // SSE and AVX registers
    const bool zmm_state = (xcr0_lo & 0xe6u) == 0xe6u;   // and opmask, ZMM0-15 upper halves, ZMM16-31
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8), avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31),
               avx512vnni = c & (1u << 11);
    f.avx2 = ymm_state && avx2 && fma && f16c;
    f.avx512 = f.avx2 && bmi2 && zmm_state && avx512f && avx512bw && avx512vl && avx512vnni;
    const bool amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    const bool tile_state = (xcr0_lo & 0x60000u) == 0x60000u;  // XTILECFG and XTILEDATA
    f.amx = f.avx512 && amx_tile && amx_int8 && tile_state && amx_granted();
#endif
    return f;
}

}  // namespace forge::cpu
