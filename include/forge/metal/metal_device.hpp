#pragma once
// The Metal executor (Apple only; built by -DFORGE_METAL=ON as the forge_metal library, which defines
// FORGE_METAL for its users). It compiles an MSL library from source with fast math off, so the kernels
// compute what the emulator computes, and runs launches through one concurrent compute encoder per
// command buffer: only Encoder::barrier() orders them.
#include <memory>
#include <string_view>

#include "forge/metal/device.hpp"

namespace forge::metal {

// The system's default Metal device with `msl_source` compiled; throws forge::Error with the compiler's
// log when there is no device or the source does not compile.
std::unique_ptr<Device> make_metal_device(std::string_view msl_source);

}  // namespace forge::metal
