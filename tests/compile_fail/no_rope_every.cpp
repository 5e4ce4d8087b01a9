// Breaks one shape rule: a negative RoPE-free layer interval.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.no_rope_every = -4; }>>);
