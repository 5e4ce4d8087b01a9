// forge run: the compiled fast path when the file's shape is in the catalog, the runtime shape otherwise.
#include "commands.hpp"
#include "forge/model/open_model.hpp"
#include "run_command.hpp"

namespace forge::cli {

int run(int argc, char** argv) {
    return run_command("forge run", argc, argv, FORGE_DEFAULT_MODEL,
                       [](gguf::File f, ModelOptions o) { return open_model(std::move(f), o); });
}

}  // namespace forge::cli
