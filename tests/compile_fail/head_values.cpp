// Breaks one shape rule: heads * head_dim past 2^24.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.heads = 1 << 22; }>>);
