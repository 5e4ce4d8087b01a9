#pragma once
// --backend for every command that runs a model: cpu, metal (Apple GPUs, in builds with FORGE_METAL),
// metal-emu (forge's Metal kernels run by the MSL emulator) or metal-cuda (the same kernels compiled by
// nvcc for an NVIDIA GPU), passed to the library in ModelOptions.
#include <string>

#include "forge/model/any_model.hpp"

namespace forge::cli {

inline constexpr const char* kBackendHelp = "cpu|metal|metal-emu|metal-cuda";

// "compiled traits X on cpu" / "runtime shape ... on cpu": which path a command took, for its report.
inline std::string describe_path(const AnyModel& m) {
    const std::string path = m.compiled_name().empty() ? "runtime shape (no compiled traits match this file)"
                                                       : "compiled traits " + std::string(m.compiled_name());
    return path + " on " + std::string(m.device_name());
}

}  // namespace forge::cli
