#pragma once
// --backend for every command that runs a model: cpu, metal (Apple GPUs, in builds with FORGE_METAL),
// metal-emu (forge's Metal kernels run by the MSL emulator) or metal-cuda (the same kernels compiled by
// nvcc for an NVIDIA GPU), passed to the library in ModelOptions; and --no-mmap, where the weights live.
#include <string>

#include "args.hpp"
#include "forge/gguf/reader.hpp"
#include "forge/model/any_model.hpp"

namespace forge::cli {

inline constexpr const char* kBackendHelp = "cpu|metal|metal-emu|metal-cuda";

// The option run, bench and serve declare, and the file opened as it says: mapped from the page cache,
// or with --no-mmap (llama.cpp's name) read into the process's own memory.
inline constexpr Option kNoMmap{"--no-mmap", "", false};
inline gguf::File open_weights(const Args& args, const std::string& path) {
    return gguf::File::open(path, args.has("--no-mmap") ? Residency::own_memory : Residency::page_cache);
}

// "mapped" or "read into memory": how the weights' bytes got there, for a command's report.
inline const char* residency_name(const gguf::File& f) { return f.residency() == Residency::own_memory ? "read into memory" : "mapped"; }

// "compiled traits X on cpu, avx2 kernels" / "runtime shape ... on cpu, ...": which path and kernels a
// command took, for its report.
inline std::string describe_path(const AnyModel& m) {
    std::string path;
    if (!m.compiled_name().empty()) path = "compiled traits " + std::string(m.compiled_name());
    else if (m.device_name() != "cpu") path = "runtime shape (no compiled traits match this file)";
    else if (m.row_length_kernels()) path = "runtime shape, kernels compiled for its row lengths";
    else path = "runtime shape (no kernels compiled for its row lengths)";
    return path + " on " + std::string(m.device_name()) + ", " + std::string(m.kernels()) + " kernels";
}

}  // namespace forge::cli
