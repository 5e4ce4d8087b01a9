// Breaks one shape rule: weights of a type the kernels do not take (F64).
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.weights = forge::DType::F64; }>>);
