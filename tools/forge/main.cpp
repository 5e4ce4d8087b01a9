// forge: the command-line front end. Every failure is one line on stderr and a non-zero exit.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "commands.hpp"
#include "forge/core/printable.hpp"

namespace {

struct Command {
    std::string_view name;
    int (*run)(int, char**);
    std::string_view help;
};

constexpr Command kCommands[] = {
    {"run", forge::cli::run, "run [-m MODEL.gguf] [-p PROMPT] [-n N] [--temp T] ...   generate text (forge run -h)"},
    {"bench", forge::cli::bench, "bench -m MODEL.gguf [-t THREADS] [-p 512] [-n 128] [-r 5]   prefill/decode tok/s, as llama-bench"},
    {"inspect", forge::cli::inspect, "inspect FILE.gguf        architecture, shape, tensors, matching compiled traits"},
    {"tokenize", forge::cli::tokenize, "tokenize -m MODEL.gguf [--no-bos] TEXT | --file CASES   token ids"},
    {"eval", forge::cli::eval, "eval -m MODEL.gguf --tokens 1,2,3 [--prompt-len P] --json OUT   logits at every position"},
    {"serve", forge::cli::serve, "serve [-m MODEL.gguf] [--port 8080] [--parallel N] ...   OpenAI-compatible HTTP server (forge serve -h)"},
    {"template", forge::cli::chat_template, "template -m MODEL.gguf | --chat-template-file F --messages JSON [--tools JSON]   the chat prompt a template renders"},
    {"quantize", forge::cli::quantize, "quantize IN.gguf OUT.gguf q8_0|q4_0   convert F16/BF16/K-quant weights to ones forge runs"},
};

int usage(std::FILE* out) {
    std::fprintf(out, "usage: forge COMMAND [options]\n\ncommands:\n");
    for (const auto& c : kCommands) std::fprintf(out, "  %.*s\n", int(c.help.size()), c.help.data());
    return out == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(stderr);
    const std::string_view name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") return usage(stdout);
    for (const auto& c : kCommands) {
        if (c.name != name) continue;
        try {
            return c.run(argc - 1, argv + 1);
        } catch (const std::exception& e) {
            // One line, whatever the message quotes from a file or an argument.
            std::fprintf(stderr, "forge %s: error: %s\n", argv[1], forge::printable(e.what()).c_str());
            return 1;
        }
    }
    std::fprintf(stderr, "forge: unknown command %s (try 'forge --help')\n", forge::quoted_text(argv[1]).c_str());
    return 2;
}
