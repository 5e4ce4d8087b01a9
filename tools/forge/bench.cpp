// forge bench: prefill and decode speed of a model file, printed as llama-bench prints it (a ppN and a
// tgN row, mean ± stdev over repetitions), so the two engines' numbers line up. It runs the model as
// `forge run` would: compiled traits when the file's shape is in the CLI's catalog (the zoo's shapes
// with -DFORGE_BUILD_ZOO=ON), else the runtime-shape path, on the backend asked for; the last lines say
// which.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "backend.hpp"
#include "commands.hpp"
#include "forge/cpu/simd/isa.hpp"
#include "forge/model/open_model.hpp"

namespace forge::cli {
namespace {

constexpr const char* kUsage =
    "usage: forge bench -m MODEL.gguf [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-r REPETITIONS] [--backend cpu|metal|metal-emu] [--no-mmap]\n"
    "  ppN: N prompt tokens prefilled from an empty context (default 512; 0 skips)\n"
    "  tgN: N tokens decoded one at a time from an empty context (default 128; 0 skips)\n"
    "  each test runs once to warm up, then REPETITIONS times (default 5); threads default to the core count\n"
    "  --no-mmap: the weights read into the process's own memory instead of mapped from the page cache\n";

struct Stats {
    double mean = 0, stdev = 0;
};

Stats stats(const std::vector<double>& v) {
    Stats s;
    for (const double x : v) s.mean += x;
    s.mean /= double(v.size());
    if (v.size() > 1) {
        for (const double x : v) s.stdev += (x - s.mean) * (x - s.mean);
        s.stdev = std::sqrt(s.stdev / double(v.size() - 1));
    }
    return s;
}

std::string human_bytes(double b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, b >= double(1 << 30) ? "%.2f GiB" : "%.2f MiB", b / (b >= double(1 << 30) ? 1 << 30 : 1 << 20));
    return buf;
}

}  // namespace

int bench(int argc, char** argv) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--threads", "-t"}, {"--n-prompt", "-p"}, {"--n-gen", "-n"},
                                 {"--repetitions", "-r"}, {"--backend", ""}, kNoMmap, {"--help", "-h", false}});
    if (args.has("--help")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "'");
    const auto path = args.get("--model");
    if (!path) throw Error("give a model with -m MODEL.gguf");
    const int threads = args.number("--threads", int(std::max(1u, std::thread::hardware_concurrency())));
    const int n_prompt = args.number("--n-prompt", 512);
    const int n_gen = args.number("--n-gen", 128);
    const int reps = args.number("--repetitions", 5);
    if (threads < 1 || threads > 1024) throw Error("--threads must be between 1 and 1024");
    if (n_prompt < 0 || n_gen < 0 || n_prompt + n_gen == 0) throw Error("-p and -n must be >= 0, not both 0");
    if (reps < 1) throw Error("--repetitions must be at least 1");

    const Backend backend = parse_backend(args.get_or("--backend", "cpu"));
    const auto opened = open_model(open_weights(args, *path), {.context = std::max(n_prompt, n_gen), .threads = threads, .backend = backend});
    AnyModel& model = *opened;
    const ModelShape& s = model.shape();
    std::uint64_t params = 0;
    for (const auto& t : model.file().tensors()) params += t.elements;
    std::vector<std::int32_t> tokens(std::size_t(std::max(n_prompt, n_gen)));
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::int32_t((i * 7919 + 13) % std::size_t(s.vocab));

    using clock = std::chrono::steady_clock;
    // One run of a test, in tokens per second.
    const auto run = [&](bool prefill, int n) {
        model.reset();
        const auto t0 = clock::now();
        if (prefill) model.prefill(std::span(tokens.data(), std::size_t(n)));
        else
            for (int i = 0; i < n; ++i) model.decode(tokens[std::size_t(i)]);
        return double(n) / std::chrono::duration<double>(clock::now() - t0).count();
    };

    char model_name[64];
    std::snprintf(model_name, sizeof model_name, "%s %s", std::string(arch_name(s.arch)).c_str(),
                  std::string(dtype_name(s.weights)).c_str());
    std::printf("| %-24s | %10s | %10s | %-9s | %7s | %10s | %20s |\n", "model", "size", "params", "backend", "threads",
                "test", "t/s");
    std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |\n", std::string(24, '-').c_str(), std::string(9, '-').c_str(),
                std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(6, '-').c_str(),
                std::string(9, '-').c_str(), std::string(19, '-').c_str());
    for (const bool prefill : {true, false}) {
        const int n = prefill ? n_prompt : n_gen;
        if (n == 0) continue;
        run(prefill, n);  // warm-up: faults the weights in, sizes every buffer
        std::vector<double> speeds;
        for (int r = 0; r < reps; ++r) speeds.push_back(run(prefill, n));
        const Stats st = stats(speeds);
        char test[16], tps[32], params_s[16];
        std::snprintf(test, sizeof test, "%s%d", prefill ? "pp" : "tg", n);
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", st.mean, st.stdev);
        std::snprintf(params_s, sizeof params_s, "%.2f %s", params >= 1000000000 ? double(params) / 1e9 : double(params) / 1e6,
                      params >= 1000000000 ? "B" : "M");
        std::printf("| %-24s | %10s | %10s | %-9s | %7d | %10s | %20s |\n", model_name,
                    human_bytes(double(model.file().bytes().size())).c_str(), params_s, std::string(backend_name(backend)).c_str(),
                    model.threads(), test, tps);
        std::fflush(stdout);
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("\npeak RSS %s (file %s %s, KV cache %s); %s\n", human_bytes(double(ru.ru_maxrss) * 1024.0).c_str(),
                residency_name(model.file()), human_bytes(double(model.file().bytes().size())).c_str(), human_bytes(double(model.kv_cache_bytes())).c_str(),
                describe_path(model).c_str());
    // Other work on the machine slows every dispatch's barrier: say how busy it was.
    double load[3];
    if (getloadavg(load, 3) == 3) std::printf("load average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    return 0;
}

}  // namespace forge::cli
