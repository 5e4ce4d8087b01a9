#pragma once
// Entry points for the GPU path: a model of the catalog (models/catalog.hpp) run by the MSL emulator or
// by Metal. Both accept only shapes compiled into the program; anything else is an error saying so.
//
//   auto m = forge::metal::open_emulated_model(forge::gguf::File::open(path), {.threads = 2});
//   auto logits = m->prefill(prompt);            // AnyModel interface
//   auto tok = m->sample(0.8f, u);               // on-device sampling
//
// open_emulated_model needs the program linked with forge_metal_emu; open_metal_model needs an Apple
// build configured with -DFORGE_METAL=ON (elsewhere it throws, naming the alternative).
#include <memory>
#include <string>
#include <tuple>

#include "forge/gguf/model_shape.hpp"
#include "forge/metal/emu/open.hpp"
#include "forge/metal/model.hpp"
#include "forge/models/catalog.hpp"
#if defined(FORGE_METAL)
#include "forge/metal/metal_device.hpp"
#endif

namespace forge::metal {

namespace detail {

inline std::string catalog_names() {
    std::string names;
    for (const auto& m : models::kCatalog) names += (names.empty() ? "" : ", ") + std::string(m.name);
    return names;
}

// Calls make<T>() for the catalog traits whose shape is the file's.
template <class Make>
std::unique_ptr<GpuModelBase> open_compiled(gguf::File& file, std::string_view backend, Make&& make) {
    const ModelShape s = gguf::model_shape(file);
    std::unique_ptr<GpuModelBase> out;
    [&]<class... T>(std::tuple<T...>*) {
        ((!out && T::shape == s ? (out = make.template operator()<T>(), 0) : 0), ...);
    }(static_cast<models::Catalog*>(nullptr));
    if (!out)
        throw Error("the " + std::string(backend) + " backend runs only model shapes compiled into forge (" + catalog_names() +
                    "); this file's shape is not one of them: add its traits to the catalog and rebuild, or use the cpu backend");
    return out;
}

}  // namespace detail

inline std::unique_ptr<GpuModelBase> open_emulated_model(gguf::File file, ModelOptions opt = {}) {
    return detail::open_compiled(file, "metal-emu", [&]<class T>() -> std::unique_ptr<GpuModelBase> {
        return std::make_unique<GpuModel<T>>(std::move(file), opt, emu::make_device<T>());
    });
}

inline std::unique_ptr<GpuModelBase> open_metal_model([[maybe_unused]] gguf::File file, [[maybe_unused]] ModelOptions opt = {}) {
#if defined(FORGE_METAL)
    return detail::open_compiled(file, "metal", [&]<class T>() -> std::unique_ptr<GpuModelBase> {
        return std::make_unique<GpuModel<T>>(std::move(file), opt, make_metal_device(metal_src::library<T>.text.view()));
    });
#elif defined(__APPLE__)
    throw Error("Metal is unavailable in this build: configure forge with -DFORGE_METAL=ON (or use --backend metal-emu)");
#else
    throw Error("Metal is unavailable here: it needs an Apple GPU (use --backend metal-emu to run the Metal kernels on the CPU)");
#endif
}

}  // namespace forge::metal
