#pragma once
// Every compiled traits type forge ships, as a type list (to instantiate) and as named shapes (to match
// a file against). Adding a model: write its traits header, then list it here.
//
// Catalog is the core list every build compiles.
// ZooCatalog holds the published models; a program compiles their row lengths' kernels in only when built
// with FORGE_ZOO defined (the CLI with -DFORGE_BUILD_ZOO=ON). find_compiled() and the CLI's kernels use
// CompiledCatalog, which is Catalog plus, with FORGE_ZOO, the zoo. This is the one list of compiled
// models: the build files are generated from it (tools/CMakeLists.txt, examples/CMakeLists.txt).
#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "forge/models/granite.hpp"
#include "forge/models/llama.hpp"
#include "forge/models/phi3.hpp"
#include "forge/models/qwen2_5.hpp"
#include "forge/models/qwen3.hpp"
#include "forge/models/smollm2.hpp"
#include "forge/models/smollm3.hpp"
#include "forge/models/stories260k.hpp"
#include "forge/models/synthetic.hpp"

namespace forge::models {

using Catalog = std::tuple<Stories260K, SynthLlama<DType::F32>, SynthLlama<DType::F16>, SynthLlama<DType::Q8_0>,
                           SynthLlama<DType::Q4_0>, SynthQwen2Q8_0, SynthQwen3F32>;

template <DType W>
using ZooModels = std::tuple<SmolLM2_135M<W>, SmolLM2_360M<W>, SmolLM2_1_7B<W>, Qwen2_5_0_5B<W>, Qwen2_5_1_5B<W>,
                             Qwen2_5_3B<W>, Qwen2_5_7B<W>, TinyLlama_1_1B<W>, Llama3_2_1B<W>, Llama3_2_3B<W>,
                             Llama3_1_8B<W>, Mistral_7B_v0_3<W>, Qwen3_0_6B<W>, Qwen3_1_7B<W>, Qwen3_4B<W>, Qwen3_8B<W>,
                             SmolLM3_3B<W>, Phi3_5_Mini<W>, Granite3_3_2B<W>>;
using ZooCatalog = decltype(std::tuple_cat(std::declval<ZooModels<DType::Q8_0>>(), std::declval<ZooModels<DType::Q4_0>>()));

#ifdef FORGE_ZOO
using CompiledCatalog = decltype(std::tuple_cat(std::declval<Catalog>(), std::declval<ZooCatalog>()));
#else
using CompiledCatalog = Catalog;
#endif

namespace detail {
template <class T>
struct Rebind;
template <template <DType> class M, DType W>
struct Rebind<M<W>> {
    template <DType V>
    using as = M<V>;
};
// The weight type of a model's example binary: Q8_0 up to 3B parameters, Q4_0 for the 7-8B models, so
// each fits a 16 GB machine with room for its KV cache.
template <class T>
using ExampleOf = std::conditional_t<(T::shape.weight_bytes() > std::size_t(4) << 30), typename Rebind<T>::template as<DType::Q4_0>, T>;
template <class... T>
std::tuple<ExampleOf<T>...> examples_of(std::tuple<T...>*);
}  // namespace detail

// One example binary per zoo model (examples/zoo_main.cpp.in), its traits fixed at compile time.
using ZooExamples = decltype(detail::examples_of(static_cast<ZooModels<DType::Q8_0>*>(nullptr)));

struct NamedShape {
    std::string_view name;
    ModelShape shape;
};

template <class List>
inline constexpr auto kNamedShapes = []<class... T>(std::tuple<T...>*) {
    return std::array<NamedShape, sizeof...(T)>{NamedShape{T::name, T::shape}...};
}(static_cast<List*>(nullptr));

inline constexpr const auto& kCatalog = kNamedShapes<Catalog>;
inline constexpr const auto& kZooCatalog = kNamedShapes<ZooCatalog>;

// The compiled traits whose shape equals `s`, or nullptr.
constexpr const NamedShape* find_compiled(const ModelShape& s) {
    for (const auto& m : kNamedShapes<CompiledCatalog>)
        if (m.shape == s) return &m;
    return nullptr;
}

}  // namespace forge::models
