#pragma once
// An MSL library as the emulator runs it: each kernel's compiled entry point, by name. emu/jit.hpp
// compiles a library's text into one of these when the library is loaded, as Metal compiles it.
#include <cstddef>
#include <span>
#include <string_view>

#include "forge/metal/emu/runtime.hpp"

namespace forge::metal::emu {

struct KernelTableEntry {
    std::string_view name;
    KernelEntry entry;
    std::size_t params_size;  // sizeof the MSL parameter struct as compiled
};

struct LibraryTable {
    std::string_view name;
    std::span<const KernelTableEntry> kernels;
};

}  // namespace forge::metal::emu
