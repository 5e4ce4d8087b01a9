// forge run: stream a completion of a prompt to stdout; load time, prefill and decode speed and memory on
// stderr. Built on the library's LanguageModel like any program using forge.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "args.hpp"
#include "backend.hpp"
#include "commands.hpp"
#include "forge/core/printable.hpp"
#include "forge/model/language_model.hpp"

namespace forge::cli {

namespace {

constexpr const char* kRunUsage =
    "usage: forge run [-m MODEL.gguf] [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "                 [--repeat-penalty R] [--seed S] [--threads N] [-c CONTEXT] [--backend cpu|metal|metal-emu]\n"
    "                 [--check-tensors] [--no-mmap]\n"
    "  Sampling defaults are llama.cpp's: --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0.05; --seed: random.\n"
    "  --threads: one per hardware thread. --check-tensors: scan the weights for NaN and infinity first.\n"
    "  --no-mmap: read the weights into the process's own memory instead of mapping them from the page cache.\n"
    "  without -m: %s\n";

}  // namespace

int run(int argc, char** argv) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--prompt", "-p"}, {"--n-predict", "-n"}, {"--temp", ""},
                                 {"--top-k", ""}, {"--top-p", ""}, {"--min-p", ""}, {"--repeat-penalty", ""},
                                 {"--seed", "-s"}, {"--threads", "-t"}, {"--ctx-size", "-c"}, {"--backend", ""},
                                 {"--check-tensors", "", false}, kNoMmap, {"--help", "-h", false}});
    if (args.has("--help")) {
        std::printf(kRunUsage, FORGE_DEFAULT_MODEL);
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "' (quote the prompt after -p)");

    GenerationParams gen;
    gen.max_tokens = args.number("--n-predict", 256);
    gen.sampling.temperature = args.number("--temp", 0.8f);
    gen.sampling.top_k = args.number("--top-k", 40);
    gen.sampling.top_p = args.number("--top-p", 0.95f);
    gen.sampling.min_p = args.number("--min-p", 0.05f);
    gen.sampling.repeat_penalty = args.number("--repeat-penalty", 1.0f);
    if (args.has("--seed")) gen.sampling.seed = args.number("--seed", std::uint64_t(0));
    Sampler::check(gen.sampling);

    const std::string path = args.get_or("--model", FORGE_DEFAULT_MODEL);
    const auto t0 = std::chrono::steady_clock::now();
    LanguageModel lm = LanguageModel::open(open_weights(args, path), {.context = args.number("--ctx-size", 0), .threads = args.number("--threads", 0),
                                                  .backend = parse_backend(args.get_or("--backend", "cpu")),
                                                  .check_tensors = args.has("--check-tensors")});
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const std::string prompt_text = args.get_or("--prompt", "");
    const auto prompt = lm.tokenize(prompt_text);
    if (prompt.empty()) throw Error("the prompt is empty and this vocabulary adds no BOS token: give one with -p");

    std::fputs(prompt_text.c_str(), stdout);
    const GenerationResult r = lm.complete(prompt, gen, [](const TokenEvent& e) {
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);

    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    const AnyModel& model = lm.model();
    std::fprintf(stderr, "\nmodel: %s — %s, %d threads, seed %llu\n", printable(path).c_str(), describe_path(model).c_str(), model.threads(),
                 static_cast<unsigned long long>(r.seed));
    std::fprintf(stderr, "load:    %8.1f ms\n", load_s * 1e3);
    std::fprintf(stderr, "prefill: %8.1f tok/s (%d tokens in %.1f ms)\n", r.prompt_tokens / r.prefill_seconds, r.prompt_tokens,
                 r.prefill_seconds * 1e3);
    std::fprintf(stderr, "decode:  %8.1f tok/s (%zu tokens in %.1f ms, finished: %s)\n",
                 r.tokens.empty() ? 0.0 : double(r.tokens.size()) / r.decode_seconds, r.tokens.size(), r.decode_seconds * 1e3,
                 std::string(finish_reason_name(r.finish)).c_str());
    std::fprintf(stderr, "memory:  %8.1f MiB peak RSS (weights %.1f MiB %s, KV cache %.1f MiB)\n", double(ru.ru_maxrss) / 1024.0,
                 double(model.file().bytes().size()) / (1 << 20), residency_name(model.file()), double(model.kv_cache_bytes()) / (1 << 20));
    return 0;
}

}  // namespace forge::cli
