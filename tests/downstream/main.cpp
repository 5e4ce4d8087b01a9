// A downstream program: compile-time facts of a compiled model, then the same model read from its file.
#include <cstdio>

#include "models.hpp"

using forge::models::Stories260K;

static_assert(forge::ModelTraits<Stories260K>);
static_assert(Stories260K::shape.head_dim == 8);
static_assert(Stories260K::shape.kv_dim() == 32);
// f16 K and V: 2 tensors x 2 bytes x 5 layers x 32 dims.
static_assert(Stories260K::shape.kv_cache_bytes_per_token() == 640);
static_assert(Stories260K::shape.kv_cache_bytes(Stories260K::shape.max_context) == 327680);
// Per layer 4*(64*64 + 2*32*64 + 64*64 + 3*172*64 + 2*64) = 181760 bytes, plus F32 embeddings, LM head and
// final norm.
static_assert(Stories260K::shape.weight_bytes() == 5 * 181760 + 2 * 4 * 512 * 64 + 4 * 64);

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: downstream stories260K.gguf\n");
        return 2;
    }
    try {
        const auto shape = forge::gguf::model_shape(forge::gguf::File::open(argv[1]));
        const auto* match = forge::models::find_compiled(shape);
        if (!match || match->name != Stories260K::name) {
            std::fprintf(stderr, "downstream: %s does not match the compiled stories260K traits\n", argv[1]);
            return 1;
        }
        std::printf("downstream: %s matches %.*s\n", argv[1], int(match->name.size()), match->name.data());
        // The CPU kernels a program built without -march runs: chosen at load from what the CPU has.
        const forge::Model<forge::Dynamic> model(forge::gguf::File::open(argv[1]));
        std::printf("downstream: kernels %.*s\n", int(model.kernels().size()), model.kernels().data());
        return 0;
    } catch (const forge::Error& e) {
        std::fprintf(stderr, "downstream: %s\n", e.what());
        return 1;
    }
}
