#pragma once
// Every compiled traits type forge ships, as a type list (to instantiate) and as named shapes (to match
// a file against). Adding a model: write its traits header, then list it here.
#include <array>
#include <tuple>

#include "forge/models/stories260k.hpp"
#include "forge/models/synthetic.hpp"

namespace forge::models {

using Catalog = std::tuple<Stories260K, SynthLlama<DType::F32>, SynthLlama<DType::F16>, SynthLlama<DType::Q8_0>,
                           SynthLlama<DType::Q4_0>, SynthQwen2Q8_0>;

struct NamedShape {
    std::string_view name;
    ModelShape shape;
};

inline constexpr auto kCatalog = []<class... T>(std::tuple<T...>*) {
    return std::array<NamedShape, sizeof...(T)>{NamedShape{T::name, T::shape}...};
}(static_cast<Catalog*>(nullptr));

// The compiled traits whose shape equals `s`, or nullptr.
constexpr const NamedShape* find_compiled(const ModelShape& s) {
    for (const auto& m : kCatalog)
        if (m.shape == s) return &m;
    return nullptr;
}

}  // namespace forge::models
