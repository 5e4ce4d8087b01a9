// The control: shapes at the edge of every rule compile, so each case beside this one fails for the rule
// it names, not because the headers, the include path or the Edited helper are broken.
#include "edited.hpp"

using forge::DType;
using forge::ModelShape;

static_assert(forge::ModelTraits<Edited<[](ModelShape&) {}>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.head_dim = 256; }>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.head_dim = 4; }>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.kv_heads = 1; }>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.kv_heads = s.heads; }>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.sliding_window = s.max_context; }>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) {
    s.arch = forge::Arch::qwen2;
    s.rope_style = forge::RopeStyle::neox;
}>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) {
    s.weights = DType::Q4_0;
    s.ffn = 192;
}>>);
static_assert(forge::ModelTraits<Edited<[](ModelShape& s) { s.weights = DType::F16; }>>);
