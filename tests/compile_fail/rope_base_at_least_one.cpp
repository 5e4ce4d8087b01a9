// Breaks one shape rule: a positive rope_base below 1 (a denormal, as a corrupt file can hold).
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.rope_base = 1e-44f; }>>);
