#pragma once
// Traits whose shape is stories260K's with one edit applied: each case below breaks one rule of
// forge/traits/shape_rules.hpp, starting from a shape known to obey them all.
#include "forge/models/stories260k.hpp"

template <auto Edit>
struct Edited {
    static constexpr std::string_view name = "edited";
    static constexpr forge::ModelShape shape = [] {
        forge::ModelShape s = forge::models::Stories260K::shape;
        Edit(s);
        return s;
    }();
};
