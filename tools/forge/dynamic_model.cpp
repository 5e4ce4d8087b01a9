// The forge CLI's one CPU model: a file's shape at run time, with the GEMMs row_lengths.cpp.in compiled
// for the catalog's row lengths.
#include "forge/model/model_adapter.hpp"

FORGE_INSTANTIATE_MODEL(forge::Dynamic);
