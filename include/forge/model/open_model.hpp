#pragma once
// open_model(): the one way to open a model file, for every backend. On the CPU it takes the compiled
// fast path when the file's shape equals one of the catalog's traits, else the runtime-shape path
// (Model<Dynamic>); on metal or metal-emu it runs the GPU forward pass for the file's shape
// (metal/open.hpp). open_model<T>() fixes compiled traits T instead, on any backend, and refuses a file of
// another shape naming every field that differs.
//
// This header only declares the CPU models: the program supplies make_model<T> for every type of
// models::CompiledCatalog and for Dynamic (or for the T it opens), either by including model_adapter.hpp
// in the same translation unit or, to keep builds parallel, with one FORGE_INSTANTIATE_MODEL(T) per TU.
#include <memory>
#include <tuple>

#include "forge/gguf/model_shape.hpp"
#include "forge/metal/open.hpp"
#include "forge/model/any_model.hpp"
#include "forge/models/catalog.hpp"

namespace forge {

struct Dynamic;

namespace detail {
template <class T>
inline constexpr bool kIsTypeList = false;
template <class... T>
inline constexpr bool kIsTypeList<std::tuple<T...>> = true;
}  // namespace detail

// A template only so that the catalog's models are instantiated where it is called, not wherever this
// header is included (an example binary instantiates just its own traits).
template <class Catalog = models::CompiledCatalog>
    requires detail::kIsTypeList<Catalog>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.backend != Backend::cpu) return metal::open_gpu_model(std::move(file), opt);
    const ModelShape s = gguf::model_shape(file);
    std::unique_ptr<AnyModel> out;
    [&]<class... T>(std::tuple<T...>*) {
        ((!out && T::shape == s ? (out = make_model<T>(std::move(file), opt), 0) : 0), ...);
    }(static_cast<Catalog*>(nullptr));
    return out ? std::move(out) : make_model<Dynamic>(std::move(file), opt);
}

template <ModelTraits T>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.backend != Backend::cpu) return metal::open_gpu_model<T>(std::move(file), opt);
    return make_model<T>(std::move(file), opt);
}

}  // namespace forge
