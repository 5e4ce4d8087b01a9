#pragma once
// --backend for the CLI's model-running commands: `cpu` (the caller's choice of CPU model), `metal`
// (Apple GPUs, in builds with FORGE_METAL) or `metal-emu` (forge's Metal kernels run by the MSL
// emulator, in programs linked with forge_metal_emu).
#include <functional>
#include <memory>
#include <string>

#include "forge/model/any_model.hpp"
#if defined(FORGE_CLI_METAL)
#include "forge/metal/open.hpp"
#endif

namespace forge::cli {

using ModelFactory = std::function<std::unique_ptr<AnyModel>(gguf::File, ModelOptions)>;

inline constexpr const char* kBackendHelp = "cpu|metal|metal-emu";

inline std::unique_ptr<AnyModel> open_backend(const std::string& backend, gguf::File file, ModelOptions opt,
                                              const ModelFactory& cpu) {
    if (backend == "cpu") return cpu(std::move(file), opt);
    if (backend == "metal" || backend == "metal-emu") {
#if defined(FORGE_CLI_METAL)
        if (backend == "metal") return metal::open_metal_model(std::move(file), opt);
        return metal::open_emulated_model(std::move(file), opt);
#else
        throw Error("the " + backend + " backend is not built into this program (use the forge CLI, or --backend cpu)");
#endif
    }
    throw Error("unknown backend '" + backend + "' (" + kBackendHelp + ")");
}

// "compiled traits X on cpu" / "runtime shape ... on cpu": which path a command took, for its report.
inline std::string describe_path(const AnyModel& m) {
    const std::string path = m.compiled_name().empty() ? "runtime shape (no compiled traits match this file)"
                                                       : "compiled traits " + std::string(m.compiled_name());
    return path + " on " + std::string(m.device_name());
}

}  // namespace forge::cli
