// The examples' models (models.hpp), compiled here once.
#include <forge/forge.hpp>

FORGE_INSTANTIATE_MODEL(forge::Dynamic);
FORGE_INSTANTIATE_GPU_MODEL(forge::Dynamic);
