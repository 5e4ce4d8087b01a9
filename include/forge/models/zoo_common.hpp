#pragma once
// What the zoo's traits share: each zoo model comes as Q8_0 and Q4_0 (the weight types forge computes with
// and the targets of forge quantize), named after the model with the type appended.
#include <string_view>

#include "forge/traits/model_traits.hpp"

namespace forge::models {

template <DType W>
concept ZooWeights = W == DType::Q8_0 || W == DType::Q4_0;

template <DType W>
constexpr std::string_view zoo_name(std::string_view q8_0, std::string_view q4_0) {
    return W == DType::Q8_0 ? q8_0 : q4_0;
}

}  // namespace forge::models
