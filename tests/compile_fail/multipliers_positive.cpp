// Breaks one shape rule: a residual multiplier of zero.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.residual_scale = 0.0f; }>>);
