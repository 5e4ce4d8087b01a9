#pragma once
// Compile-time model traits. A traits type is a struct with a name and a `static constexpr ModelShape`:
//
//   struct Stories260K {
//       static constexpr std::string_view name = "stories260K";
//       static constexpr forge::ModelShape shape{.arch = forge::Arch::llama, .vocab = 512, ...};
//   };
//
// `forge::ModelTraits<T>` accepts it only if the shape obeys every rule in shape_rules.hpp; a broken
// rule stops compilation with that rule's message.
#include <concepts>
#include <string_view>

#include "forge/traits/shape_rules.hpp"

namespace forge {

// In place of traits (Model<Dynamic>, open_model<Dynamic>): the shape comes from the file at run time.
struct Dynamic {};

template <class T>
concept HasModelShape = requires {
    { T::name } -> std::convertible_to<std::string_view>;
    { T::shape } -> std::convertible_to<ModelShape>;
};

namespace detail {
template <HasModelShape T>
struct ShapeRulesHold {
#define FORGE_SHAPE_RULE_STATIC(cond, msg) \
    static_assert([](const ModelShape& s) { return cond; }(T::shape), "forge traits: " msg);
    FORGE_SHAPE_RULES(FORGE_SHAPE_RULE_STATIC)
#undef FORGE_SHAPE_RULE_STATIC
    static constexpr bool value = true;
};
}  // namespace detail

template <class T>
concept ModelTraits = HasModelShape<T> && detail::ShapeRulesHold<T>::value;

}  // namespace forge
