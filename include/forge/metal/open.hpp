#pragma once
// The GPU path's way in: a model file run by Metal or by the MSL emulator, for any shape the CPU path
// runs. A shape read from the file gets its MSL library assembled when the model opens (by the same
// constexpr code compiled traits use at compile time) and compiled by the device, as Metal compiles a
// library at load. Programs reach this through forge::open_model (model/open_model.hpp) with
// ModelOptions::backend; open_gpu_model<T> is the compiled-traits form, whose library text is a
// constant of the program.
//
// The emulator compiles with the host's C++ compiler (metal/emu/jit.hpp), the CUDA executor with nvcc
// (metal/cuda/jit.hpp); Metal itself needs an Apple build configured with -DFORGE_METAL=ON (elsewhere it
// is refused, naming the alternative).
#include <memory>
#include <string>
#include <string_view>

#include "forge/gguf/model_shape.hpp"
#include "forge/metal/cuda/device.hpp"
#include "forge/metal/emu/open.hpp"
#include "forge/metal/model.hpp"
#include "forge/model/options.hpp"
#include "forge/traits/model_traits.hpp"
#if defined(FORGE_METAL)
#include "forge/metal/metal_device.hpp"
#endif

namespace forge::metal {

// The device that runs `lib` for `backend` (metal, metal-emu or metal-cuda); `label` names the library in messages.
inline std::unique_ptr<Device> make_device(Backend backend, std::string_view label, const metal_src::Library& lib) {
    const std::span kernels(lib.kernels.data(), lib.n_kernels);
    if (backend == Backend::metal_emu) return emu::make_device(label, kernels, lib.text.view());
    if (backend == Backend::metal_cuda) return cuda::make_device(label, kernels, lib.text.view());
    if (backend != Backend::metal)
        throw Error("the GPU path runs on the metal, metal-emu or metal-cuda backend, not " + std::string(backend_name(backend)));
#if defined(FORGE_METAL)
    return make_metal_device(lib.text.view());
#elif defined(__APPLE__)
    throw Error("Metal is unavailable in this build: configure forge with -DFORGE_METAL=ON (or use --backend metal-emu)");
#else
    throw Error("Metal is unavailable here: it needs an Apple GPU (use --backend metal-emu to run the Metal kernels on the CPU)");
#endif
}

// How a runtime shape's library is named in messages and device names: what its kernels are built for.
inline std::string library_label(const ModelShape& s) {
    return "runtime " + std::string(arch_name(s.arch)) + " head_dim " + std::to_string(s.head_dim) + " " + std::string(dtype_name(s.weights));
}

// The types of the file's matrices that have kernels: what its library is built for. (A matrix of a type
// without kernels is refused by name when the model loads its weights.)
inline std::uint32_t matrix_types(const gguf::File& file) {
    std::uint32_t types = 0;
    for (const auto& t : file.tensors())
        if (t.dims.size() >= 2 && dtype_info(t.type_id) && !metal_src::dtype_suffix(t.dtype()).empty())
            types |= metal_src::dtype_bit(t.dtype());
    return types;
}

inline std::unique_ptr<GpuModel> open_gpu_model(gguf::File file, ModelOptions opt = {}) {
    const ModelShape s = gguf::model_shape(file);
    require_supported_shape(s);
    (void)resolve_context(opt.context, s);  // refused before the library is compiled
    LibraryPtr lib = runtime_library(s, matrix_types(file));
    auto device = make_device(opt.backend, library_label(s), *lib);
    return std::make_unique<GpuModel>(std::move(file), opt, s, std::move(lib), std::move(device), std::string_view{});
}

template <ModelTraits T>
std::unique_ptr<GpuModel> open_gpu_model(gguf::File file, ModelOptions opt = {}) {
    const ModelShape found = gguf::model_shape(file);
    require_shape_matches(T::name, T::shape, found);
    (void)resolve_context(opt.context, found);
    LibraryPtr lib = compiled_library<T>();
    auto device = make_device(opt.backend, T::name, *lib);
    return std::make_unique<GpuModel>(std::move(file), opt, found, std::move(lib), std::move(device), T::name);
}

}  // namespace forge::metal
