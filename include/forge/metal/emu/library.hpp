#pragma once
// The MSL libraries compiled into the emulator at build time (tools/metal_emu/ generates them from the same
// constexpr text Metal receives): each kernel's entry point, found by the traits' name.
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
    std::string_view name;  // the traits' name
    std::span<const KernelTableEntry> kernels;
};

// Every library compiled into this program (defined by the generated registry).
std::span<const LibraryTable* const> compiled_libraries();

inline const LibraryTable* find_library(std::string_view name) {
    for (const auto* t : compiled_libraries())
        if (t->name == name) return t;
    return nullptr;
}

}  // namespace forge::metal::emu
