// Breaks one shape rule: heads not a multiple of kv_heads.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.kv_heads = 3; }>>);
