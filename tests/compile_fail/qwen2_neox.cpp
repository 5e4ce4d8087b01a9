// Breaks one shape rule: qwen2 with adjacent-pair RoPE.
#include "edited.hpp"

static_assert(forge::ModelTraits<Edited<[](forge::ModelShape& s) { s.arch = forge::Arch::qwen2; }>>);
