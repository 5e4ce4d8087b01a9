#pragma once
// `forge run` and the per-model example binaries: load a model, stream a completion to stdout, and
// report load time, prefill and decode speed and memory on stderr. The caller chooses how the model is
// built (compiled traits fixed at compile time, or whatever open_model picks), nothing else differs.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "args.hpp"
#include "backend.hpp"
#include "forge/core/printable.hpp"
#include "forge/model/any_model.hpp"
#include "forge/model/generate.hpp"
#include "forge/tokenizer/tokenizer.hpp"

namespace forge::cli {

inline constexpr const char* kRunUsage =
    "usage: %s [-m MODEL.gguf] [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "          [--repeat-penalty R] [--seed S] [--threads N] [-c CONTEXT] [--backend cpu|metal|metal-emu]\n"
    "  without -m: %s\n";

inline int run_command(const char* program, int argc, char** argv, const std::string& default_model,
                       const ModelFactory& open) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--prompt", "-p"}, {"--n-predict", "-n"}, {"--temp", ""},
                                 {"--top-k", ""}, {"--top-p", ""}, {"--min-p", ""}, {"--repeat-penalty", ""},
                                 {"--seed", "-s"}, {"--threads", "-t"}, {"--ctx-size", "-c"}, {"--backend", ""},
                                 {"--help", "-h", false}});
    if (args.has("--help")) {
        std::printf(kRunUsage, program, default_model.c_str());
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "' (quote the prompt after -p)");

    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    const int threads = args.number("--threads", int(hw));
    if (threads < 1 || threads > 1024) throw Error("--threads must be between 1 and 1024");
    GenerationParams gen;
    gen.max_tokens = args.number("--n-predict", 256);
    gen.sampling.temperature = args.number("--temp", 0.8f);
    gen.sampling.top_k = args.number("--top-k", 40);
    gen.sampling.top_p = args.number("--top-p", 0.95f);
    gen.sampling.min_p = args.number("--min-p", 0.05f);
    gen.sampling.repeat_penalty = args.number("--repeat-penalty", 1.0f);
    gen.sampling.seed = args.number("--seed", std::uint64_t(std::random_device{}()));

    const std::string path = args.get_or("--model", default_model);
    const auto t0 = std::chrono::steady_clock::now();
    gguf::File file = gguf::File::open(path);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const auto model = open(std::move(file), {.context = args.number("--ctx-size", 0), .threads = threads,
                                              .backend = parse_backend(args.get_or("--backend", "cpu"))});
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const std::string prompt_text = args.get_or("--prompt", "");
    const auto prompt = tok.encode(prompt_text, tok.add_bos());
    if (prompt.empty()) throw Error("the prompt is empty and this vocabulary adds no BOS token: give one with -p");

    std::fputs(prompt_text.c_str(), stdout);
    const GenerationResult r = generate(*model, tok, prompt, gen, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);

    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const std::string path_taken = describe_path(*model);
    std::fprintf(stderr, "\nmodel: %s — %s, %d threads, seed %llu\n", printable(path).c_str(), path_taken.c_str(), model->threads(),
                 static_cast<unsigned long long>(gen.sampling.seed));
    std::fprintf(stderr, "load:    %8.1f ms\n", load_s * 1e3);
    std::fprintf(stderr, "prefill: %8.1f tok/s (%d tokens in %.1f ms)\n", r.prompt_tokens / r.prefill_seconds,
                 r.prompt_tokens, r.prefill_seconds * 1e3);
    std::fprintf(stderr, "decode:  %8.1f tok/s (%zu tokens in %.1f ms, finished: %s)\n",
                 r.tokens.empty() ? 0.0 : double(r.tokens.size()) / r.decode_seconds, r.tokens.size(),
                 r.decode_seconds * 1e3, std::string(finish_reason_name(r.finish)).c_str());
    std::fprintf(stderr, "memory:  %8.1f MiB peak RSS (weights %.1f MiB mapped, KV cache %.1f MiB)\n",
                 double(ru.ru_maxrss) / 1024.0, double(model->file().bytes().size()) / (1 << 20),
                 double(model->kv_cache_bytes()) / (1 << 20));
    return 0;
}

}  // namespace forge::cli
