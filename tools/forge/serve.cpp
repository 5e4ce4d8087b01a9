// forge serve: the OpenAI-compatible HTTP server. SIGINT and SIGTERM stop it gracefully: they are
// blocked in every thread and taken by sigwait() in the main thread, so no handler runs in signal context.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "args.hpp"
#include "backend.hpp"
#include "commands.hpp"
#include "forge/core/printable.hpp"
#include "forge/model/batched_sequences.hpp"
#include "forge/model/open_model.hpp"
#include "forge/serve/server.hpp"

namespace forge::cli {

namespace {

constexpr const char* kServeUsage =
    "usage: forge serve [-m MODEL.gguf] [--host 127.0.0.1] [--port 8080] [--parallel N] [--cache-ram MIB] [--threads N] [-c CONTEXT]\n"
    "                   [--backend cpu|metal|metal-emu] [--check-tensors] [--no-mmap] [--api-key KEY] [--cors-origin ORIGIN]...\n"
    "                   [--chat-template-file FILE]\n"
    "                   [--max-connections N] [--max-body BYTES] [--timeout SECONDS] [--shutdown-timeout SECONDS]\n"
    "  --port 0 picks a free port; the address is printed on stderr once the server is ready.\n"
    "  --parallel N generates for N requests at once (one KV cache each; on the CPU their tokens share each\n"
    "                   pass over the weights); more wait in arrival order.\n"
    "  --cache-ram MIB  KV caches beyond --parallel's, keeping paused conversations for their next turn\n"
    "                   (evicted least recently used; at most 1024 more; default 0).\n"
    "  --threads N kernel threads (default: one per core).\n"
    "  --no-mmap  read the weights into the process's own memory instead of mapping them from the page cache.\n"
    "  --max-body B largest request body in bytes (default 1048576); a request may send twice that plus\n"
    "                   its head in all, chunk framing included.\n"
    "  --timeout S read and write timeout for slow clients (default 10).\n"
    "  --api-key KEY   every route but /health wants 'Authorization: Bearer KEY' (401 otherwise).\n"
    "  --chat-template-file F  a Jinja chat template to render conversations with instead of the model's.\n"
    "  --cors-origin O browser pages from origin O (scheme://host[:port], or * for any) may call the API;\n"
    "                   repeat for more origins. Without it, replies carry no CORS headers.\n"
    "  --shutdown-timeout S on SIGTERM/SIGINT, running generations may go on this long, then stop (default 5);\n"
    "                   a second signal exits at once.\n"
    "  without -m: %s\n";

// The most KV caches --cache-ram adds (a small model's caches are small: the count, not memory, binds).
constexpr int kMaxCachedSlots = 1024;

// The chat template: --chat-template-file's, else the model file's (a built-in family when it has none or
// it does not parse). Also the words the startup line says where it came from with.
std::pair<chat::Template, std::string> chat_template_of(const Args& args, const gguf::File& file) {
    if (const auto path = args.get("--chat-template-file")) {
        std::ifstream in(*path, std::ios::binary);
        if (!in) throw Error("cannot open --chat-template-file '" + printable(*path) + "'");
        const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        try {
            return {chat::Template(std::string_view(text)), printable(*path)};
        } catch (const Error& e) {
            throw Error("--chat-template-file '" + printable(*path) + "': " + e.what());
        }
    }
    chat::Template t = chat::Template::of(file);
    const bool has_text = file.get_string("tokenizer.chat_template").has_value();
    std::string source = t.is_jinja() ? "the model's" : "built-in " + std::string(chat::format_name(t.format())) +
                                                            (has_text ? " (the model's does not parse)" : " (the model has none)");
    return {std::move(t), std::move(source)};
}

}  // namespace

int serve(int argc, char** argv) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--host", ""}, {"--port", ""}, {"--parallel", "-np"}, {"--threads", "-t"}, {"--cache-ram", ""},
                                 {"--ctx-size", "-c"}, {"--backend", ""}, {"--max-connections", ""}, {"--max-body", ""}, {"--timeout", ""}, {"--shutdown-timeout", ""},
                                 {"--check-tensors", "", false}, kNoMmap, {"--api-key", ""}, {"--cors-origin", ""}, {"--chat-template-file", ""},
                                 {"--help", "-h", false}});
    if (args.has("--help")) {
        std::printf(kServeUsage, FORGE_DEFAULT_MODEL);
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "'");
    const int parallel = args.number("--parallel", 1);
    if (parallel < 1 || parallel > 256) throw Error("--parallel must be between 1 and 256");
    const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = args.number("--threads", hw);
    if (threads < 1 || threads > 1024) throw Error("--threads must be between 1 and 1024");
    const double cache_mib = args.number("--cache-ram", 0.0);
    if (!(cache_mib >= 0 && cache_mib <= double(1 << 20))) throw Error("--cache-ram must be between 0 and 1048576 MiB");
    serve::ServerOptions opt;
    opt.host = args.get_or("--host", opt.host);
    opt.port = args.number("--port", opt.port);
    if (opt.port < 0 || opt.port > 65535) throw Error("--port must be between 0 and 65535");
    opt.max_connections = args.number("--max-connections", opt.max_connections);
    if (opt.max_connections < 1 || opt.max_connections > 100'000) throw Error("--max-connections must be between 1 and 100000");
    const auto max_body = args.number("--max-body", std::uint64_t(opt.limits.max_body));
    if (max_body < 1024 || max_body > (std::uint64_t(1) << 30)) throw Error("--max-body must be between 1024 and 1073741824 bytes");
    opt.limits.max_body = std::size_t(max_body);
    const int timeout_s = args.number("--timeout", 10);
    if (timeout_s < 1 || timeout_s > 3600) throw Error("--timeout must be between 1 and 3600 seconds");
    opt.read_timeout = opt.write_timeout = std::chrono::seconds(timeout_s);
    const double shutdown_s = args.number("--shutdown-timeout", 5.0);
    if (!(shutdown_s >= 0 && shutdown_s <= 3600)) throw Error("--shutdown-timeout must be between 0 and 3600 seconds");
    opt.shutdown_timeout = std::chrono::milliseconds(std::int64_t(shutdown_s * 1000));

    // Before any thread starts, so every thread inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const Backend backend = parse_backend(args.get_or("--backend", "cpu"));
    const std::string path = args.get_or("--model", FORGE_DEFAULT_MODEL);
    const gguf::File file = open_weights(args, path);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    auto [chat_template, template_source] = chat_template_of(args, file);
    const ModelOptions model_options{.context = args.number("--ctx-size", 0), .threads = threads, .backend = backend};
    ModelOptions first_options = model_options;  // the weights are scanned once, by the first model
    first_options.check_tensors = args.has("--check-tensors");
    std::unique_ptr<AnyModel> first = open_model(file, first_options);
    // On the CPU every slot is a sequence of one model, fed in shared passes; a backend holding one
    // sequence per model gets a model per slot, each over the one shared mapping of the weights.
    const int slots = parallel + int(std::min(cache_mib * double(1 << 20) / double(first->kv_cache_bytes()), double(kMaxCachedSlots)));
    const bool shared_passes = first->has_sequences();
    std::vector<std::unique_ptr<AnyModel>> models;
    if (shared_passes) {
        models = batched_sequences(std::move(first), slots, {.pass_tokens = model_options.max_batch});
    } else {
        if (cache_mib > 0)
            throw Error("--cache-ram keeps more sequences of one model, but " + std::string(first->device_name()) + " holds one sequence per model");
        models.push_back(std::move(first));
        for (int i = 1; i < parallel; ++i) models.push_back(open_model(file, model_options));
    }
    serve::Scheduler scheduler(std::move(models), parallel);
    serve::ApiOptions api_options{.api_key = args.get_or("--api-key", ""),
                                  .cors_origins = args.all("--cors-origin"),
                                  .log = [](std::string_view line) { std::fprintf(stderr, "forge serve: %.*s\n", int(line.size()), line.data()); }};
    if (args.has("--api-key") && api_options.api_key.empty()) throw Error("--api-key must not be empty");
    for (const auto& origin : api_options.cors_origins)
        if (!serve::is_cors_origin(origin))
            throw Error("--cors-origin must be * or an origin such as https://app.example:8443 (scheme://host[:port], no path), not '" + printable(origin) + "'");
    serve::Api api(tok, scheduler, std::move(chat_template), std::filesystem::path(path).stem().string(), std::move(api_options));
    serve::Server server(api, opt);

    const auto stats = scheduler.stats();
    std::fprintf(stderr, "forge serve: model %s, chat template %s, tool calls %s, %d slot(s) of %d tokens on %s (%d generating at once%s), %d thread(s)\n",
                 printable(path).c_str(), template_source.c_str(), std::string(chat::tool_call_format_name(api.tool_call_format())).c_str(),
                 stats.slots, scheduler.context(), std::string(scheduler.front().device_name()).c_str(), stats.running,
                 shared_passes ? ", in shared passes" : "", threads);
    // The cap is lowered where the open-file limit (raised to its hard limit) leaves room for fewer.
    std::fprintf(stderr, "forge serve: listening on http://%s:%d (at most %d connections%s)\n", opt.host.c_str(), server.port(),
                 server.max_connections(), server.max_connections() < opt.max_connections ? ", as the open-file limit allows" : "");
    std::fflush(stderr);

    std::atomic<bool> stopped{false};
    std::thread loop([&] {
        server.run();  // returns only after stop()
        stopped = true;
    });
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "forge serve: %s received, finishing running requests (at most %.1f s more)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
                 shutdown_s);
    server.stop();
    while (!stopped) {
        const timespec poll_interval{0, 50'000'000};
        if (sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0) {
            std::fprintf(stderr, "forge serve: second signal, exiting now\n");
            std::_Exit(1);
        }
    }
    loop.join();
    std::fprintf(stderr, "forge serve: stopped\n");
    return 0;
}

}  // namespace forge::cli
