#pragma once
// The models forge's examples open (LanguageModel::open: the CPU model and the GPU path of a file's
// shape), declared extern as docs/library.md shows: every example's file gets this header first, and
// models.cpp compiles them once for all three.
#include <forge/forge.hpp>

FORGE_EXTERN_MODEL(forge::Dynamic);
FORGE_EXTERN_GPU_MODEL(forge::Dynamic);
