// `forge serve` end to end with the bundled model: greedy generation over HTTP is exactly llama2.c's
// reference text (whole and streamed, and at temperatures too small to sample with), concurrent clients
// all get answers, streamed chunks are valid JSON and UTF-8 and end with [DONE], a chunk-extension flood
// leaves memory bounded, SIGTERM and SIGINT stop it cleanly and within the shutdown deadline, CORS and
// /metrics work, forced tool calls and json_schema replies follow their schemas, a chat template file
// renders conversations, and bad options are one-line errors.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string_view>
#include <thread>
#include <vector>

#include "forge/gguf/synthetic_model.hpp"
#include "forge/json/json.hpp"
#include "reference.hpp"
#include "run_process.hpp"
#include "serve_client.hpp"
#include "serve_process.hpp"
#include "testdata.hpp"

namespace forge::test {
namespace {

std::string chat(std::size_t max_tokens, bool stream) {
    return json::dump(json::Object{{"model", "stories260K"},
                                   {"messages", json::Array{json::Object{{"role", "user"}, {"content", "Tell me a story about a cat."}}}},
                                   {"max_tokens", max_tokens},
                                   {"seed", 7},
                                   {"stream", stream},
                                   {"stream_options", json::Object{{"include_usage", true}}}});
}

TEST(CliServe, GreedyCompletionIsTheReferenceTextWholeAndStreamed) {
    const std::string golden = json::parse(read_file(testdata("reference/stories260K.golden.json"))).at("text").as_string();
    ServeProcess server(FORGE_CLI, {"--threads", "1"});
    TestClient c(server.port());
    const std::string body = R"({"prompt":"","max_tokens":200,"temperature":0)";  // from BOS alone, as `forge run` does
    c.send(post("/v1/completions", body + "}"));
    const HttpResponse r = c.response();
    ASSERT_EQ(r.status, 200) << r.body;
    const json::Value v = json::parse(r.body);
    EXPECT_EQ(v.at("choices").as_array()[0].at("text").as_string(), golden);
    EXPECT_EQ(v.at("usage").at("prompt_tokens").as_number(), 1);
    EXPECT_EQ(v.at("usage").at("completion_tokens").as_number(), 200);

    c.send(post("/v1/completions", body + R"(,"stream":true})"));
    ASSERT_EQ(c.head().status, 200);
    std::string streamed;
    int chunks = 0;
    while (auto e = c.next_event()) {
        if (*e == "[DONE]") break;
        streamed += json::parse(*e).at("choices").as_array()[0].at("text").as_string();
        ++chunks;
    }
    EXPECT_EQ(streamed, golden);
    EXPECT_GT(chunks, 50) << "token by token";
}

TEST(CliServe, ConcurrentClientsAllGetAnswers) {
    ServeProcess server(FORGE_CLI, {"--parallel", "2", "--threads", "1"});
    constexpr int kClients = 6;
    std::atomic<int> ok{0};
    std::vector<std::string> failures(kClients);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
        clients.emplace_back([&, i] {
            try {
                TestClient c(server.port());
                c.send(post("/v1/chat/completions", chat(32, false)));
                const HttpResponse r = c.response();
                const json::Value v = json::parse(r.body);
                const json::Value& u = v.at("usage");
                const bool good = r.status == 200 && v.at("model").as_string() == "stories260K" &&
                                  !v.at("choices").as_array()[0].at("message").at("content").as_string().empty() &&
                                  u.at("completion_tokens").as_number() <= 32 && u.at("prompt_tokens").as_number() > 0 &&
                                  u.at("total_tokens").as_number() == u.at("prompt_tokens").as_number() + u.at("completion_tokens").as_number();
                if (good) ++ok;
                else failures[std::size_t(i)] = r.body;
            } catch (const std::exception& e) {
                failures[std::size_t(i)] = e.what();
            }
        });
    for (auto& t : clients) t.join();
    EXPECT_EQ(ok, kClients);
    for (const auto& f : failures) EXPECT_EQ(f, "");
    TestClient c(server.port());
    c.send(get("/health"));
    const json::Value health = json::parse(c.response().body);
    EXPECT_EQ(health.at("slots").as_number(), 2);
    EXPECT_EQ(health.at("served").as_number(), kClients);
}

TEST(CliServe, StreamedChatIsValidJsonChunksEndingWithUsageAndDone) {
    ServeProcess server(FORGE_CLI, {"--threads", "1"});
    TestClient c(server.port());
    c.send(post("/v1/chat/completions", chat(64, true)));
    const HttpResponse head = c.head();
    ASSERT_EQ(head.status, 200);
    EXPECT_EQ(head.headers.at("content-type"), "text/event-stream");
    std::vector<std::string> events;
    while (auto e = c.next_event()) events.push_back(*e);
    ASSERT_GE(events.size(), 4u);
    EXPECT_EQ(events.back(), "[DONE]");
    int content_chunks = 0;
    std::string finish;
    for (std::size_t i = 0; i + 2 < events.size(); ++i) {
        const json::Value chunk = json::parse(events[i]);  // rejects invalid UTF-8
        const json::Value& choice = chunk.at("choices").as_array().at(0);
        if (const auto* content = choice.at("delta").find("content"); content && !content->as_string().empty()) ++content_chunks;
        if (!choice.at("finish_reason").is_null()) finish = choice.at("finish_reason").as_string();
    }
    const json::Value usage = json::parse(events[events.size() - 2]).at("usage");
    EXPECT_TRUE(finish == "length" || finish == "stop") << finish;
    EXPECT_GE(content_chunks, 2);
    EXPECT_LE(content_chunks, int(usage.at("completion_tokens").as_number())) << "at most one chunk per token";
    // The log's line for it: its tokens, and the slots' state once it was done.
    server.stop();
    const std::regex line("forge serve: chatcmpl-[0-9a-f]+: prompt " + std::to_string(int(usage.at("prompt_tokens").as_number())) +
                          " tokens \\(0 cached\\), " + std::to_string(int(usage.at("completion_tokens").as_number())) + " generated \\(" + finish +
                          "\\) in [0-9]+ ms; slots 0 of 1 busy, 0 queued, [0-9]+ tokens cached\n");
    EXPECT_TRUE(std::regex_search(server.stderr_text(), line)) << server.stderr_text();
}

TEST(CliServe, SigtermAndSigintStopItCleanly) {
    for (const int sig : {SIGTERM, SIGINT}) {
        ServeProcess server(FORGE_CLI, {"--threads", "1"});
        TestClient idle(server.port());  // an idle keep-alive connection must not hold up the exit
        idle.send(get("/health"));
        EXPECT_EQ(idle.response().status, 200);
        EXPECT_EQ(server.stop(sig), 0) << server.stderr_text();
        EXPECT_NE(server.stderr_text().find("forge serve: stopped"), std::string::npos) << server.stderr_text();
    }
}

TEST(CliServe, ATinyTemperatureIsGreedy) {
    const std::string golden = json::parse(read_file(testdata("reference/stories260K.golden.json"))).at("text").as_string();
    ServeProcess server(FORGE_CLI, {"--threads", "1"});
    TestClient c(server.port());
    for (const char* temperature : {"1e-9", "5e-9", "1e-30", "1e-50"}) {
        c.send(post("/v1/completions", std::string(R"({"prompt":"","max_tokens":200,"seed":3,"temperature":)") + temperature + "}"));
        const HttpResponse r = c.response();
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(json::parse(r.body).at("choices").as_array()[0].at("text").as_string(), golden) << temperature;
    }
}

// The server's peak resident memory, from /proc.
long peak_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// A blocking loopback connection with bounded sends, or -1.
int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const timeval two_seconds{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &two_seconds, sizeof two_seconds);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

TEST(CliServe, ChunkExtensionFloodKeepsMemoryBounded) {
    // Bodies of 1-byte chunks that each carry a 1000-byte extension, from 8 connections for 3 seconds,
    // each reconnecting when refused: the server must refuse each request at its raw-size limit and keep
    // almost nothing of what was sent.
    ServeProcess server(FORGE_CLI, {"--threads", "1"});
    std::string burst;
    for (int i = 0; i < 64; ++i) burst += "1;" + std::string(1000, 'e') + "\r\nx\r\n";
    const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    std::atomic<long> sent{0};
    std::atomic<int> refused{0};
    std::vector<std::thread> flooders;
    for (int i = 0; i < 8; ++i)
        flooders.emplace_back([&] {
            while (std::chrono::steady_clock::now() < until) {
                const int fd = connect_loopback(server.port());
                if (fd < 0) return;
                bool open = ::send(fd, head.data(), head.size(), MSG_NOSIGNAL) > 0;
                while (open && std::chrono::steady_clock::now() < until) {
                    const ssize_t n = ::send(fd, burst.data(), burst.size(), MSG_NOSIGNAL);
                    open = n > 0;
                    if (open) sent += n;
                    pollfd p{fd, POLLIN, 0};
                    if (::poll(&p, 1, 0) > 0) {  // the server answered: it can only be a refusal
                        char reply[64] = {};
                        if (::recv(fd, reply, sizeof reply - 1, 0) > 0 && std::string_view(reply).starts_with("HTTP/1.1 413")) ++refused;
                        open = false;
                    }
                }
                ::close(fd);
            }
        });
    for (auto& t : flooders) t.join();
    const long peak = peak_rss_kib(server.pid());
    EXPECT_GT(sent.load(), 8L * 2 * 1024 * 1024) << "each connection got past one request's raw limit";
    EXPECT_GT(refused.load(), 0);
    EXPECT_GT(peak, 0);
    EXPECT_LT(peak, 100 * 1024) << "KiB peak RSS after " << sent.load() / (1 << 20) << " MiB of chunk extensions";
    TestClient c(server.port());  // and it still serves
    c.send(get("/health"));
    EXPECT_EQ(c.response().status, 200);
}

// A model slow enough that a generation outlasts the shutdown deadline many times over: random Q8_0
// weights of 45M parameters, whose output row for EOS is zero so greedy decoding never ends early.
std::string write_slow_model() {
    const std::string path = (std::filesystem::temp_directory_path() / ("forge-slow-" + std::to_string(::getpid()) + ".gguf")).string();
    const ModelShape shape{.vocab = 512, .hidden = 1024, .ffn = 2816, .layers = 4, .heads = 16, .kv_heads = 4, .head_dim = 64,
                           .max_context = 4096, .weights = DType::Q8_0};
    gguf::synthetic_model(shape).write(path);
    const gguf::File f = gguf::File::open(path);
    const gguf::TensorInfo& out = f.tensor("output.weight");
    const std::size_t row = row_bytes(DType::Q8_0, std::size_t(shape.hidden));
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(std::streamoff(f.data_offset() + out.offset + 2 * row));  // token 2 is the placeholder vocabulary's EOS
    file.write(std::string(row, '\0').data(), std::streamsize(row));
    return path;
}

TEST(CliServe, SigtermStopsLongGenerationsAtTheDeadlineAndSaysSo) {
    const std::string model = write_slow_model();
    ServeProcess server(FORGE_CLI, {"-m", model, "--threads", "1", "--parallel", "2", "--shutdown-timeout", "1"});
    const std::string body = R"({"prompt":"","max_tokens":4000,"temperature":0)";
    TestClient streamed(server.port(), std::chrono::seconds(30));
    streamed.send(post("/v1/completions", body + R"(,"stream":true})"));
    ASSERT_EQ(streamed.head().status, 200);
    int tokens = 0;
    for (; tokens < 3; ++tokens) ASSERT_TRUE(streamed.next_event());  // generating
    TestClient whole(server.port(), std::chrono::seconds(30));
    whole.send(post("/v1/completions", body + "}"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(server.stop(SIGTERM), 0) << server.stderr_text();
    const double exit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The deadline (1 s) plus the connections' grace (1 s), with room for a loaded machine; a generation
    // left to finish would take a minute.
    EXPECT_LT(exit_s, 5.0) << server.stderr_text();

    std::vector<std::string> events;
    while (auto e = streamed.next_event()) events.push_back(*e);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.back(), "[DONE]");
    const json::Value error = json::parse(events[events.size() - 2]).at("error");
    EXPECT_EQ(error.at("code").as_string(), "shutting_down") << events[events.size() - 2];
    EXPECT_LT(int(events.size()) + tokens, 4000) << "cut short";

    const HttpResponse r = whole.response();
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(json::parse(r.body).at("error").at("code").as_string(), "shutting_down") << r.body;
    std::filesystem::remove(model);
}

// Browser access and monitoring through the real server: two allowed origins (the option repeats),
// a preflight without the key, a streamed reply marked for its origin, and /metrics counting the work.
TEST(CliServe, CorsOriginsAndMetrics) {
    ServeProcess server(FORGE_CLI, {"--threads", "1", "--api-key", "k", "--cors-origin", "https://a.example", "--cors-origin",
                                    "http://localhost:5173"});
    TestClient c(server.port());
    c.send("OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:5173\r\n"
           "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n");
    const HttpResponse preflight = c.response();
    EXPECT_EQ(preflight.status, 204);
    EXPECT_EQ(preflight.headers.at("access-control-allow-origin"), "http://localhost:5173");
    EXPECT_EQ(preflight.headers.at("access-control-allow-headers"), "Authorization, Content-Type");

    c.send(post("/v1/chat/completions", chat(8, true), "Authorization: Bearer k\r\nOrigin: https://a.example\r\n"));
    const HttpResponse head = c.head();
    ASSERT_EQ(head.status, 200);
    EXPECT_EQ(head.headers.at("access-control-allow-origin"), "https://a.example");
    double generated = -1;
    while (auto e = c.next_event()) {  // to the body's end, so the next response is read from its start
        if (*e == "[DONE]") continue;
        const json::Value chunk = json::parse(*e);
        if (chunk.find("usage")) generated = chunk.at("usage").at("completion_tokens").as_number();
    }

    c.send(get("/metrics", "Authorization: Bearer k\r\n"));
    const HttpResponse m = c.response();
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("forge_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("\nforge_generated_tokens_total " + std::to_string(int(generated)) + "\n"), std::string::npos) << m.body;
    EXPECT_NE(m.body.find("\nforge_time_to_first_token_seconds_count 1\n"), std::string::npos) << m.body;
    EXPECT_EQ(m.headers.count("access-control-allow-origin"), 0u) << "no Origin, no CORS header";
}

// Structured output through the real server and model: a forced call's arguments and a json_schema
// reply both follow their schemas.
TEST(CliServe, ForcedToolCallsAndJsonSchemaRepliesFollowTheirSchemas) {
    ServeProcess server(FORGE_CLI, {"--threads", "1"});
    TestClient c(server.port());
    const json::Value schema = json::parse(R"({"type":"object","properties":{"city":{"type":"string","maxLength":20},"days":{"type":"integer","minimum":0}},
                                               "required":["city","days"],"additionalProperties":false})");
    const json::Value messages = json::Array{json::Object{{"role", "user"}, {"content", "Weather in Paris for two days?"}}};
    c.send(post("/v1/chat/completions",
                json::dump(json::Object{{"messages", messages},
                                        // Seeded, one call, room for it: the 512-token model spells the call's
                                        // markup a few characters per token, and an unseeded draw may run long.
                                        {"max_tokens", 400},
                                        {"seed", 7},
                                        {"parallel_tool_calls", false},
                                        {"tools", json::Array{json::Object{{"type", "function"},
                                                                           {"function", json::Object{{"name", "forecast"}, {"parameters", schema}}}}}},
                                        {"tool_choice", "required"}})));
    HttpResponse r = c.response();
    ASSERT_EQ(r.status, 200) << r.body;
    json::Value v = json::parse(r.body);
    const json::Value& choice = v.at("choices").as_array().at(0);
    EXPECT_EQ(choice.at("finish_reason").as_string(), "tool_calls");
    for (const auto& call : choice.at("message").at("tool_calls").as_array()) {
        EXPECT_EQ(call.at("function").at("name").as_string(), "forecast");
        const json::Value args = json::parse(call.at("function").at("arguments").as_string());
        EXPECT_EQ(args.as_object().size(), 2u);
        EXPECT_LE(args.at("city").as_string().size(), 20u);
        EXPECT_GE(args.at("days").as_number(), 0);
    }

    c.send(post("/v1/chat/completions",
                json::dump(json::Object{{"messages", messages},
                                        {"max_tokens", 100},
                                        {"seed", 1},
                                        {"response_format", json::Object{{"type", "json_schema"}, {"json_schema", json::Object{{"name", "f"}, {"schema", schema}}}}}})));
    r = c.response();
    ASSERT_EQ(r.status, 200) << r.body;
    v = json::parse(r.body);
    const json::Value reply = json::parse(v.at("choices").as_array().at(0).at("message").at("content").as_string());
    EXPECT_LE(reply.at("city").as_string().size(), 20u);
    EXPECT_GE(reply.at("days").as_number(), 0);
}

// --chat-template-file renders conversations instead of the model's template (which stories260K does not
// have): the startup line names the file, /apply-template and the chat route use it.
TEST(CliServe, AChatTemplateFileRendersConversations) {
    const std::string qwen = testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja");
    {
        ServeProcess plain(FORGE_CLI, {"--threads", "1"});
        EXPECT_NE(plain.stderr_text().find("chat template built-in chatml (the model has none), tool calls hermes"), std::string::npos)
            << plain.stderr_text();
    }
    ServeProcess server(FORGE_CLI, {"--threads", "1", "--chat-template-file", qwen});
    EXPECT_NE(server.stderr_text().find("chat template " + qwen + ", tool calls hermes"), std::string::npos) << server.stderr_text();
    TestClient c(server.port());
    c.send(post("/apply-template", R"({"messages":[{"role":"user","content":"Hi"}]})"));
    HttpResponse r = c.response();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body).at("prompt").as_string(), read_file(testdata("chat-templates/Qwen-Qwen2.5-7B-Instruct.conv1.txt")));
    c.send(post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":2})"));
    r = c.response();
    ASSERT_EQ(r.status, 200) << r.body;
    // Qwen's default system prompt is part of what was fed.
    EXPECT_GT(json::parse(r.body).at("usage").at("prompt_tokens").as_number(), 20);

    const ProcessResult bad = run_process({FORGE_CLI, "serve", "--port", "0", "--chat-template-file", "/nonexistent.jinja"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("/nonexistent.jinja"), std::string::npos) << bad.err;
}

TEST(CliServe, BadOptionsAreOneLineErrors) {
    for (const auto& [args, fragment] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--parallel", "0"}, "--parallel"},
             {{"--port", "70000"}, "--port"},
             {{"--port", "x"}, "expects a number"},
             {{"-m", "/nonexistent.gguf"}, "/nonexistent.gguf"},
             {{"--timeout", "0"}, "--timeout"},
             {{"--shutdown-timeout", "-1"}, "--shutdown-timeout"},
             {{"--cache-ram", "-1"}, "--cache-ram"},
             {{"--cache-ram", "64", "--backend", "metal-emu"}, "one sequence per model"},
             {{"-c", "-5"}, "context -5 is negative"},
             {{"--cors-origin", "https://app.example/path"}, "--cors-origin"},
             {{"--bogus"}, "unknown option"}}) {
        std::vector<std::string> cmd = {FORGE_CLI, "serve", "--port", "0"};
        cmd.insert(cmd.end(), args.begin(), args.end());
        const ProcessResult r = run_process(cmd);
        EXPECT_NE(r.exit_code, 0) << fragment;
        EXPECT_EQ(r.err.rfind("forge serve: error: ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
}

}  // namespace
}  // namespace forge::test
