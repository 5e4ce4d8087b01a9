// The GPU path for a file's shape (the forward pass and its MSL text), for every forge program
// (dynamic_model.hpp); in a file of its own, so that it builds beside the CPU model.
#include "forge/model/open_model.hpp"

FORGE_INSTANTIATE_GPU_MODEL(forge::Dynamic);
