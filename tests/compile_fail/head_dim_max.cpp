// Breaks one shape rule: head_dim past the kernels' largest.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.head_dim = 260; }>>);
