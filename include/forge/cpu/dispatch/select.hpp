#pragma once
// Which kernel set a model runs, chosen when it loads. Besides the set of the program's own target
// flags, a program may link sets compiled apart for other instruction sets (cmake/cpu_kernel_sets.cmake
// builds them for every target linking forge::forge on x86-64 Linux): each is one object file exporting
// one function, declared weak here, so a program without them still links and runs its own set. The
// best set this CPU can execute runs; the environment variable FORGE_CPU_KERNELS names another.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/cpu/dispatch/cpu_features.hpp"
#include "forge/cpu/dispatch/kernel_set.hpp"

#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define FORGE_CPU_DISPATCH 1
extern "C" {
// Defined by the kernel-set objects (dispatch/kernel_set.cpp compiled once per instruction set).
__attribute__((weak)) void forge_cpu_kernel_set_portable(forge::cpu::KernelSet* out);
__attribute__((weak)) void forge_cpu_kernel_set_avx2(forge::cpu::KernelSet* out);
__attribute__((weak)) void forge_cpu_kernel_set_avx512(forge::cpu::KernelSet* out);
__attribute__((weak)) void forge_cpu_kernel_set_amx(forge::cpu::KernelSet* out);
}
#endif

namespace forge::cpu {

inline constexpr const char* kKernelsVariable = "FORGE_CPU_KERNELS";

namespace detail {

inline int kernel_set_rank(std::string_view name) {
    if (name == "avx512-amx") return 4;
    if (name == "avx512-vnni") return 3;
    if (name == "avx2" || name == "neon-dotprod") return 2;
    return 0;
}

}  // namespace detail

// The sets this program can run on this CPU, best first. Where a set compiled apart has the same
// instruction set as the program's own, the program's own is listed: it has the row lengths the
// program registered, and the same bits.
inline std::vector<KernelSet> available_kernel_sets() {
    const CpuFeatures cpu = cpu_features();
    std::vector<KernelSet> sets;
    const auto add = [&](void (*entry)(KernelSet*), bool runs) {
        if (!entry || !runs) return;
        KernelSet s{};
        entry(&s);
        if (std::none_of(sets.begin(), sets.end(), [&](const KernelSet& k) { return k.name == s.name; })) sets.push_back(s);
    };
    // The program's own set runs wherever the program does, but for its tiles, which need the grant.
#if FORGE_HAVE_AMX
    add([](KernelSet* out) { *out = kernel_set_of<isa::Native>(); }, cpu.amx);
#else
    add([](KernelSet* out) { *out = kernel_set_of<isa::Native>(); }, true);
#endif
#if defined(FORGE_CPU_DISPATCH)
    add(forge_cpu_kernel_set_amx, cpu.amx);
    add(forge_cpu_kernel_set_avx512, cpu.avx512);
    add(forge_cpu_kernel_set_avx2, cpu.avx2);
    add(forge_cpu_kernel_set_portable, true);
#endif
#if !defined(FORGE_CPU_KERNEL_SETS_LINKED)
    // No sets compiled apart: the portable kernels as this program's flags compile them. (Where they are
    // linked this is left out: it would compile every portable kernel again wherever a model is built.)
    add([](KernelSet* out) { *out = kernel_set_of<isa::Portable>(); }, true);
#endif
    std::stable_sort(sets.begin(), sets.end(),
                     [](const KernelSet& a, const KernelSet& b) { return detail::kernel_set_rank(a.name) > detail::kernel_set_rank(b.name); });
    return sets;
}

// The set a model loading now runs: the one FORGE_CPU_KERNELS names, else the best available.
inline KernelSet select_kernel_set() {
    const std::vector<KernelSet> sets = available_kernel_sets();
    const char* wanted = std::getenv(kKernelsVariable);
    if (!wanted || !*wanted) return sets.front();
    std::string names;
    for (const KernelSet& s : sets) {
        if (s.name == wanted) return s;
        names += (names.empty() ? "" : ", ") + std::string(s.name);
    }
    throw Error(std::string(kKernelsVariable) + "=" + wanted + " names no kernel set this program can run on this CPU; it can run: " + names);
}

}  // namespace forge::cpu
