#pragma once
// open_model(): the one way to open a model file, for every backend. On the CPU it runs the file's
// shape (Model<Dynamic>) with the GEMMs the program compiled for its row lengths
// (cpu/kernels/row_lengths.hpp; the generic kernels, with the same bits, for lengths nobody registered);
// on metal or metal-emu it runs the GPU forward pass for the file's shape (metal/open.hpp).
// open_model<T>() fixes compiled traits T instead, on any backend, and refuses a file of another shape
// naming every field that differs.
//
// With ModelOptions::check_tensors, every weight is scanned for NaN and infinity first, and the first
// tensor holding one is named.
//
// Both are templates, so a program instantiates only the models it opens, where it opens them. A program
// opening models in several translation units can compile the CPU model in one of them: declare
// FORGE_EXTERN_MODEL(forge::Dynamic) in the others and FORGE_INSTANTIATE_MODEL(forge::Dynamic) there;
// FORGE_EXTERN_GPU_MODEL and FORGE_INSTANTIATE_GPU_MODEL do the same for the GPU path.
#include <concepts>
#include <memory>

#include "forge/gguf/check_tensors.hpp"
#include "forge/gguf/model_shape.hpp"
#include "forge/metal/open.hpp"
#include "forge/model/any_model.hpp"
#include "forge/model/model_adapter.hpp"

namespace forge {

// A template like make_model, so that the GPU path too can be compiled in one translation unit.
template <class Traits>
std::unique_ptr<AnyModel> make_gpu_model(gguf::File file, ModelOptions opt) {
    if constexpr (std::same_as<Traits, Dynamic>) return metal::open_gpu_model(std::move(file), opt);
    else return metal::open_gpu_model<Traits>(std::move(file), opt);
}

template <class D = Dynamic>
    requires std::same_as<D, Dynamic>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.check_tensors) gguf::check_finite_tensors(file);
    if (opt.backend != Backend::cpu) return make_gpu_model<D>(std::move(file), opt);
    return make_model<D>(std::move(file), opt);
}

template <ModelTraits T>
std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    if (opt.check_tensors) gguf::check_finite_tensors(file);
    if (opt.backend != Backend::cpu) return make_gpu_model<T>(std::move(file), opt);
    return make_model<T>(std::move(file), opt);
}

}  // namespace forge
