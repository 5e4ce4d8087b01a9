// Breaks one shape rule: hidden not divisible by heads.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.hidden = 68; }>>);
