#pragma once
// An emulator device for a compiled traits type: its kernels' descriptions from metal_src::library<T>,
// their compiled code from the emulator's registry (link forge_metal_emu).
#include <memory>
#include <string>

#include "forge/metal/emu/device.hpp"
#include "forge/metal/emu/library.hpp"
#include "forge/metal_src/library.hpp"

namespace forge::metal::emu {

inline std::string compiled_library_names() {
    std::string names;
    for (const auto* t : compiled_libraries()) names += (names.empty() ? "" : ", ") + std::string(t->name);
    return names;
}

template <ModelTraits T>
std::unique_ptr<EmuDevice> make_device() {
    const LibraryTable* table = find_library(T::name);
    if (!table)
        throw Error("the metal emulator was built without the kernels for '" + std::string(T::name) +
                    "' (compiled in: " + compiled_library_names() + ")");
    const auto& lib = metal_src::library<T>;
    return std::make_unique<EmuDevice>(std::span(lib.kernels.data(), lib.n_kernels), *table);
}

}  // namespace forge::metal::emu
