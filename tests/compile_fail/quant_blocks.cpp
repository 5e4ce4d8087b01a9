// Breaks one shape rule: Q8_0 weights with ffn 172, which is not a whole number of 32-value blocks.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.weights = forge::DType::Q8_0; }>>);
