#pragma once
// --backend for every command that runs a model: cpu, metal (Apple GPUs, in builds with FORGE_METAL),
// metal-emu (forge's Metal kernels run by the MSL emulator) or metal-cuda (the same kernels compiled by
// nvcc for an NVIDIA GPU), passed to the library in ModelOptions.
#include <string>

#include "forge/model/any_model.hpp"

namespace forge::cli {

inline constexpr const char* kBackendHelp = "cpu|metal|metal-emu|metal-cuda";

// "compiled traits X on cpu, avx2 kernels" / "runtime shape ... on cpu, ...": which path and kernels a
// command took, for its report.
inline std::string describe_path(const AnyModel& m) {
    const std::string path = m.compiled_name().empty() ? (m.device_name() == "cpu" ? "runtime shape (no kernels compiled for its row lengths)"
                                                                                  : "runtime shape (no compiled traits match this file)")
                                                       : "compiled traits " + std::string(m.compiled_name());
    return path + " on " + std::string(m.device_name()) + ", " + std::string(m.kernels()) + " kernels";
}

}  // namespace forge::cli
