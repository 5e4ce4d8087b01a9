// `forge serve` end to end with the bundled model: greedy generation over HTTP is exactly llama2.c's
// reference text (whole and streamed), concurrent clients all get answers, streamed chunks are valid
// JSON and UTF-8 and end with [DONE], SIGTERM and SIGINT stop it cleanly, and bad options are
// one-line errors.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

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

TEST(CliServe, BadOptionsAreOneLineErrors) {
    for (const auto& [args, fragment] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--parallel", "0"}, "--parallel"},
             {{"--port", "70000"}, "--port"},
             {{"--port", "x"}, "expects a number"},
             {{"-m", "/nonexistent.gguf"}, "/nonexistent.gguf"},
             {{"--timeout", "0"}, "--timeout"},
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
