#pragma once
// An emulator device for an MSL library: its kernels' descriptions and its text, compiled when the
// device is made (emu/jit.hpp), as Metal compiles a library when a model loads.
#include <memory>
#include <span>
#include <string_view>

#include "forge/metal/emu/device.hpp"
#include "forge/metal/emu/jit.hpp"
#include "forge/metal_src/kernel.hpp"

namespace forge::metal::emu {

inline std::unique_ptr<EmuDevice> make_device(std::string_view name, std::span<const metal_src::KernelSource> kernels,
                                              std::string_view text) {
    return std::make_unique<EmuDevice>(kernels, jit::load(name, kernels, text));
}

}  // namespace forge::metal::emu
