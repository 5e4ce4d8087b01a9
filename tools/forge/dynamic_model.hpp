#pragma once
// The models of a file's shape (open_model, LanguageModel::open), as forge's programs open them: the CPU
// model and the GPU path are each compiled once, in the library forge_dynamic_model (dynamic_model.cpp,
// gpu_model.cpp), and extern everywhere else. Every file of a target linking that library gets this
// header first (tools/CMakeLists.txt), so the examples' and tests' files need not say so.
#include "forge/model/any_model.hpp"

FORGE_EXTERN_MODEL(forge::Dynamic);
FORGE_EXTERN_GPU_MODEL(forge::Dynamic);
