#pragma once
// open_model(): the one way to open a model file, for every backend. On the CPU it runs the file's
// shape (Model<Dynamic>) with the GEMMs the program compiled for its row lengths
// (cpu/kernels/row_lengths.hpp: the catalog's, in the forge CLI), which is what compiled traits of that
// shape compute; on metal or metal-emu it runs the GPU forward pass for the file's shape
// (metal/open.hpp). open_model<T>() fixes compiled traits T instead, on any backend, and refuses a file of
// another shape naming every field that differs.
//
// This header only declares the CPU model: the program supplies make_model<Dynamic> (and make_model<T>
// for the T it opens), by including model_adapter.hpp in one translation unit or with
// FORGE_INSTANTIATE_MODEL(T).
#include <concepts>
#include <memory>

#include "forge/gguf/model_shape.hpp"
#include "forge/metal/open.hpp"
#include "forge/model/any_model.hpp"

namespace forge {

struct Dynamic;

// A template only so that Model<Dynamic> is instantiated where this is called, not wherever the header
// is included (an example binary instantiates just its own traits).
template <class D = Dynamic>
    requires std::same_as<D, Dynamic>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.backend != Backend::cpu) return metal::open_gpu_model(std::move(file), opt);
    return make_model<D>(std::move(file), opt);
}

template <ModelTraits T>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.backend != Backend::cpu) return metal::open_gpu_model<T>(std::move(file), opt);
    return make_model<T>(std::move(file), opt);
}

}  // namespace forge
