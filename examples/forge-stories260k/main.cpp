// forge-stories260k: the bundled tinystories model with its shape fixed at compile time.
#include <forge/forge.hpp>

#include "../compiled_model.hpp"

using Traits = forge::models::Stories260K;
constexpr const forge::ModelShape& kShape = Traits::shape;

// Facts a user of this binary relies on, checked when it is built.
static_assert(kShape.head_dim == 8 && kShape.q_dim() == kShape.hidden, "stories260K: 8 heads of 8 dims span the hidden size");
static_assert(kShape.group_size() == 2, "stories260K shares each KV head between 2 query heads");
static_assert(kShape.kv_cache_bytes(kShape.max_context) == 327'680, "stories260K's full-context f16 KV cache is 320 KiB");
static_assert(kShape.weight_bytes() < 1'200'000, "stories260K's F32 weights fit in 1.2 MB");

int main(int argc, char** argv) { return run_compiled_model<Traits>("forge-stories260k", argc, argv, FORGE_DEFAULT_MODEL); }
