#pragma once
// The per-model example binaries' main: a prompt completed by a model whose shape is fixed at compile
// time (traits T). Handed a file of another shape, the library refuses it naming every field that
// differs. Uses forge's installed headers only.
//
//   usage: PROGRAM [-m MODEL.gguf] [-p PROMPT] [-n TOKENS] [--temp T] [--seed S] [--backend cpu|metal|metal-emu]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <forge/forge.hpp>

template <forge::ModelTraits T>
int run_compiled_model(const char* program, int argc, char** argv, std::string model_path) {
    try {
        std::string prompt = "Once upon a time";
        forge::GenerationParams params{.max_tokens = 256};
        forge::ModelOptions options;
        for (int i = 1; i < argc; ++i) {
            const std::string_view flag = argv[i];
            if (i + 1 == argc) throw forge::Error("option " + std::string(flag) + " needs a value");
            const char* value = argv[++i];
            if (flag == "-m") model_path = value;
            else if (flag == "-p") prompt = value;
            else if (flag == "-n") params.max_tokens = std::atoi(value);
            else if (flag == "--temp") params.sampling.temperature = std::strtof(value, nullptr);
            else if (flag == "--seed") params.sampling.seed = std::strtoull(value, nullptr, 10);
            else if (flag == "--backend") options.backend = forge::parse_backend(value);
            else throw forge::Error("unknown option " + std::string(flag));
        }
        auto lm = forge::LanguageModel::open<T>(model_path, options);
        std::fputs(prompt.c_str(), stdout);
        lm.complete(lm.tokenize(prompt), params, [](const forge::TokenEvent& e) {
            std::fwrite(e.text.data(), 1, e.text.size(), stdout);
            std::fflush(stdout);
            return true;
        });
        std::fputc('\n', stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
}
