// One kernel-set object: compiled once per instruction set with that set's target flags and
// FORGE_KERNEL_SET_ENTRY naming its entry (cmake/cpu_kernel_sets.cmake), then linked into one object
// whose other symbols are all made local, so that nothing compiled here for a wider instruction set can
// stand in for the program's own copy of a shared function (an inline helper, a std:: template).
#include "forge/cpu/dispatch/kernel_set.hpp"

#if !defined(FORGE_KERNEL_SET_ENTRY) || !defined(FORGE_KERNEL_SET_NAME)
#error "compile with -DFORGE_KERNEL_SET_ENTRY=<entry> -DFORGE_KERNEL_SET_NAME=\"<set>\" and that set's target flags"
#endif

static_assert(forge::cpu::isa::Native::name == FORGE_KERNEL_SET_NAME,
              "this kernel-set object's target flags do not select the instruction set it is named for: check the flags "
              "cmake/cpu_kernel_sets.cmake passes against cpu/simd/isa.hpp's conditions");

extern "C" __attribute__((visibility("default"))) void FORGE_KERNEL_SET_ENTRY(forge::cpu::KernelSet* out) {
    *out = forge::cpu::kernel_set_of<forge::cpu::isa::Native, true>();
}
