// The CPU model of a file's shape, for every forge program (dynamic_model.hpp). In the CLI it runs the
// GEMMs row_lengths.cpp.in compiles for the catalog's row lengths.
#include "forge/model/model_adapter.hpp"

FORGE_INSTANTIATE_MODEL(forge::Dynamic);
