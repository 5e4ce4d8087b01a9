// Breaks one shape rule: weights of a type the kernels do not take (BF16).
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.weights = forge::DType::BF16; }>>);
