// Breaks one shape rule: a sliding window longer than the context.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.sliding_window = 1024; }>>);
