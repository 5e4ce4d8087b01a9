#pragma once
// One function per `forge` subcommand, each in its own .cpp; main.cpp only dispatches.
// Every command opens models of the file's shape, compiled once (dynamic_model.hpp).
#include "dynamic_model.hpp"

namespace forge::cli {

int inspect(int argc, char** argv);
int bench(int argc, char** argv);
int tokenize(int argc, char** argv);
int eval(int argc, char** argv);
int run(int argc, char** argv);
int serve(int argc, char** argv);
int quantize(int argc, char** argv);
int chat_template(int argc, char** argv);  // forge template

}  // namespace forge::cli
