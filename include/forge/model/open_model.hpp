#pragma once
// open_model(): the compiled fast path when the file's shape equals one of the catalog's traits, else
// the runtime-shape path (Model<Dynamic>). This header only declares the models; the program supplies
// make_model<T> for every type of models::CompiledCatalog and for Dynamic, either by including
// model_adapter.hpp in the same translation unit or, to keep builds parallel, with one
// FORGE_INSTANTIATE_MODEL(T) per TU.
#include <memory>
#include <tuple>

#include "forge/gguf/model_shape.hpp"
#include "forge/model/any_model.hpp"
#include "forge/models/catalog.hpp"

namespace forge {

struct Dynamic;

inline std::unique_ptr<AnyModel> open_model(gguf::File file, ModelOptions opt = {}) {
    const ModelShape s = gguf::model_shape(file);
    std::unique_ptr<AnyModel> out;
    [&]<class... T>(std::tuple<T...>*) {
        ((!out && T::shape == s ? (out = make_model<T>(std::move(file), opt), 0) : 0), ...);
    }(static_cast<models::CompiledCatalog*>(nullptr));
    return out ? std::move(out) : make_model<Dynamic>(std::move(file), opt);
}

}  // namespace forge
