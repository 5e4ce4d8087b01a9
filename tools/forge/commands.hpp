#pragma once
// One function per `forge` subcommand, each in its own .cpp; main.cpp only dispatches.
#include "forge/model/any_model.hpp"

// Every command opens models as Model<Dynamic>, compiled once, in dynamic_model.cpp.
FORGE_EXTERN_MODEL(forge::Dynamic);

namespace forge::cli {

int inspect(int argc, char** argv);
int bench(int argc, char** argv);
int tokenize(int argc, char** argv);
int eval(int argc, char** argv);
int run(int argc, char** argv);
int serve(int argc, char** argv);
int quantize(int argc, char** argv);

}  // namespace forge::cli
