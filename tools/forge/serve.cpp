// forge serve: the OpenAI-compatible HTTP server. SIGINT and SIGTERM stop it gracefully: they are
// blocked in every thread and taken by sigwait() in the main thread, so no handler runs in signal context.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "args.hpp"
#include "commands.hpp"
#include "forge/model/open_model.hpp"
#include "forge/serve/server.hpp"

namespace forge::cli {

namespace {

constexpr const char* kServeUsage =
    "usage: forge serve [-m MODEL.gguf] [--host 127.0.0.1] [--port 8080] [--parallel N] [--threads N] [-c CONTEXT]\n"
    "                   [--max-connections N] [--timeout SECONDS]\n"
    "  --port 0 picks a free port; the address is printed on stderr once the server is ready.\n"
    "  --parallel N generates for N requests at once (one KV cache each); more wait in arrival order.\n"
    "  --threads N kernel threads per generation (default: cores / parallel).\n"
    "  --timeout S read and write timeout for slow clients (default 10).\n"
    "  without -m: %s\n";

}  // namespace

int serve(int argc, char** argv) {
    const Args args(argc, argv, {{"--model", "-m"}, {"--host", ""}, {"--port", ""}, {"--parallel", "-np"}, {"--threads", "-t"},
                                 {"--ctx-size", "-c"}, {"--max-connections", ""}, {"--timeout", ""}, {"--help", "-h", false}});
    if (args.has("--help")) {
        std::printf(kServeUsage, FORGE_DEFAULT_MODEL);
        return 0;
    }
    if (!args.positional().empty()) throw Error("unexpected argument '" + args.positional()[0] + "'");
    const int parallel = args.number("--parallel", 1);
    if (parallel < 1 || parallel > 256) throw Error("--parallel must be between 1 and 256");
    const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = args.number("--threads", std::max(1, hw / parallel));
    if (threads < 1 || threads > 1024) throw Error("--threads must be between 1 and 1024");
    serve::ServerOptions opt;
    opt.host = args.get_or("--host", opt.host);
    opt.port = args.number("--port", opt.port);
    if (opt.port < 0 || opt.port > 65535) throw Error("--port must be between 0 and 65535");
    opt.max_connections = args.number("--max-connections", opt.max_connections);
    if (opt.max_connections < 1) throw Error("--max-connections must be at least 1");
    const int timeout_s = args.number("--timeout", 10);
    if (timeout_s < 1 || timeout_s > 3600) throw Error("--timeout must be between 1 and 3600 seconds");
    opt.read_timeout = opt.write_timeout = std::chrono::seconds(timeout_s);

    // Before any thread starts, so every thread inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const std::string path = args.get_or("--model", FORGE_DEFAULT_MODEL);
    const gguf::File file = gguf::File::open(path);
    const Tokenizer tok = Tokenizer::from_gguf(file);
    const serve::ChatFormat format = serve::detect_chat_format(file.get_string("tokenizer.chat_template").value_or(""));
    std::vector<std::unique_ptr<AnyModel>> models;
    for (int i = 0; i < parallel; ++i)  // each a KV cache of its own over the one shared mapping of the weights
        models.push_back(open_model(file, {.context = args.number("--ctx-size", 0), .threads = threads}));
    serve::Scheduler scheduler(std::move(models));
    serve::Api api(tok, scheduler, format, std::filesystem::path(path).stem().string());
    serve::Server server(api, opt);

    std::fprintf(stderr, "forge serve: model %s, chat format %s, %d slot(s) of %d tokens, %d thread(s) each\n", path.c_str(),
                 std::string(serve::chat_format_name(format)).c_str(), parallel, scheduler.context(), threads);
    std::fprintf(stderr, "forge serve: listening on http://%s:%d\n", opt.host.c_str(), server.port());
    std::fflush(stderr);

    std::thread loop([&] { server.run(); });  // returns only after stop()
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "forge serve: %s received, finishing running requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
    loop.join();
    std::fprintf(stderr, "forge serve: stopped\n");
    return 0;
}

}  // namespace forge::cli
