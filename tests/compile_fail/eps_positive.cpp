// Breaks one shape rule: rms_eps of zero.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.rms_eps = 0.0f; }>>);
