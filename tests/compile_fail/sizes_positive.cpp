// Breaks one shape rule: a size that is not positive.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.vocab = 0; }>>);
