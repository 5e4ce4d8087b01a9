// Breaks one shape rule: head_dim not a multiple of 4.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.head_dim = 6; }>>);
