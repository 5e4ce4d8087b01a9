// The server in-process over loopback sockets, with gated fake models so each test can hold a
// generation at an exact token: streaming sends each token while the next is still being made,
// characters split across tokens never split across chunks, a client that leaves stops its generation,
// slow and silent clients hold up nobody (hundreds of slow and a thousand idle ones included), requests
// wait for a free handler rather than being refused, connections past the cap get 503, queued requests
// are served in arrival order, errors come in OpenAI's shape, and stop() finishes running requests while
// refusing queued ones.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "forge/json/json.hpp"
#include "forge/serve/server.hpp"
#include "serve_client.hpp"
#include "serve_fake_model.hpp"

namespace forge::test {
namespace {

using namespace std::chrono_literals;

// A server on a free loopback port, running on its own thread until the test ends (or fails).
class RunningServer {
public:
    explicit RunningServer(FakeBackend& b, serve::ServerOptions opt = {})
        : backend_(b), api_(b.tok, *b.scheduler, chat::Template(chat::Format::chatml), "fake"), server_(api_, with_free_port(opt)),
          thread_([this] { server_.run(); }) {}
    ~RunningServer() {
        backend_.gate.open();  // nothing may stay held, or stopping would wait for it
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    int port() const { return server_.port(); }
    int max_connections() const { return server_.max_connections(); }
    void stop() { server_.stop(); }
    void join() { thread_.join(); }

private:
    static serve::ServerOptions with_free_port(serve::ServerOptions o) {
        o.host = "127.0.0.1";
        o.port = 0;
        return o;
    }
    FakeBackend& backend_;
    serve::Api api_;
    serve::Server server_;
    std::thread thread_;
};

std::string chat_body(bool stream, std::size_t max_tokens, const std::string& content = "hi") {
    return json::dump(json::Object{{"model", "fake"},
                                   {"messages", json::Array{json::Object{{"role", "user"}, {"content", content}}}},
                                   {"temperature", 0},
                                   {"max_tokens", max_tokens},
                                   {"stream", stream}});
}

// A chat request for exactly as many tokens as the fake models' script has.
std::string post_script(const FakeBackend& b, bool stream, const std::string& text) {
    return post("/v1/chat/completions", chat_body(stream, b.script(text).size()));
}

// The SSE chunks of a streamed chat completion after its head, up to [DONE].
struct Stream {
    std::vector<std::string> pieces;
    std::string finish_reason;
    bool done = false;
};
Stream read_stream(TestClient& c) {
    Stream s;
    while (auto e = c.next_event()) {
        if (*e == "[DONE]") {
            s.done = true;
            EXPECT_FALSE(c.next_event().has_value()) << "nothing after [DONE]";
            break;
        }
        const json::Value chunk = json::parse(*e);  // also proves each chunk is valid UTF-8
        EXPECT_EQ(chunk.at("object").as_string(), "chat.completion.chunk");
        const json::Value& choice = chunk.at("choices").as_array().at(0);
        if (const auto* c = choice.at("delta").find("content"); c && !c->as_string().empty()) s.pieces.push_back(c->as_string());
        if (!choice.at("finish_reason").is_null()) s.finish_reason = choice.at("finish_reason").as_string();
    }
    return s;
}

std::string joined(const std::vector<std::string>& pieces) {
    std::string out;
    for (const auto& p : pieces) out += p;
    return out;
}

const json::Value& error_of(const json::Value& body) { return body.at("error"); }

TEST(Server, StreamingSendsEachTokenWhileTheNextIsStillBeingMade) {
    const std::string text = "Once upon a time";
    FakeBackend b(1, text);
    RunningServer s(b);
    TestClient c(s.port());
    c.send(post_script(b, true, text));
    const HttpResponse head = c.head();
    ASSERT_EQ(head.status, 200);
    EXPECT_EQ(head.headers.at("content-type"), "text/event-stream");

    const json::Value role = json::parse(*c.next_event());
    EXPECT_EQ(role.at("choices").as_array()[0].at("delta").at("role").as_string(), "assistant");
    const json::Value first = json::parse(*c.next_event());
    const std::string first_piece = first.at("choices").as_array()[0].at("delta").at("content").as_string();
    EXPECT_FALSE(first_piece.empty());
    // The first token is here while generation is held before its second: nothing was buffered.
    ASSERT_TRUE(b.gate.wait_for_blocked());
    EXPECT_EQ(b.gate.passed(), 0);

    b.gate.open();
    const Stream rest = read_stream(c);
    EXPECT_TRUE(rest.done);
    EXPECT_EQ(rest.finish_reason, "length");
    EXPECT_EQ(first_piece + joined(rest.pieces), " " + text);
    EXPECT_GE(rest.pieces.size(), 2u) << "one chunk per token, not one at the end";
}

TEST(Server, ACharacterSplitAcrossTokensIsNeverSplitAcrossChunks) {
    const std::string text = "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 ok";  // "été 😀 ok": the vocabulary spells these in byte tokens
    FakeBackend b(1, text);
    ASSERT_GT(b.script(text).size(), 10u) << "multi-byte characters should take several tokens each";
    b.gate.open();
    RunningServer s(b);
    TestClient c(s.port());
    c.send(post_script(b, true, text));
    ASSERT_EQ(c.head().status, 200);
    const Stream st = read_stream(c);  // every chunk parsed as JSON: the reader rejects invalid UTF-8
    EXPECT_EQ(joined(st.pieces), " " + text);
    EXPECT_LT(st.pieces.size(), b.script(text).size()) << "bytes of an unfinished character are held back";

    c.send(post_script(b, false, text));
    const HttpResponse whole = c.response();
    ASSERT_EQ(whole.status, 200) << whole.body;
    EXPECT_EQ(json::parse(whole.body).at("choices").as_array()[0].at("message").at("content").as_string(), " " + text);
}

TEST(Server, AClientThatDisconnectsStopsItsGeneration) {
    FakeBackend b(1, "Once upon a time there was a dog");
    RunningServer s(b);
    {
        TestClient c(s.port());
        c.send(post("/v1/chat/completions", chat_body(true, 100)));
        ASSERT_EQ(c.head().status, 200);
        ASSERT_TRUE(c.next_event());  // role
        ASSERT_TRUE(c.next_event());  // first token
        ASSERT_TRUE(b.gate.wait_for_blocked());
    }  // hangs up mid-generation
    b.gate.open();
    // One slot: this is answered only once the abandoned generation has ended.
    TestClient c2(s.port());
    c2.send(post("/v1/chat/completions", chat_body(false, 2)));
    const HttpResponse r = c2.response();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LT(b.gate.passed(), 10) << "the abandoned generation would have run ~99 decode steps";
}

TEST(Server, SlowAndSilentClientsDoNotHoldUpOthers) {
    FakeBackend b(2, "Once upon a time");
    b.gate.open();
    RunningServer s(b, {.read_timeout = 5s, .idle_timeout = 5s});
    TestClient slow(s.port()), silent(s.port());
    slow.send("POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"mess");

    const auto t0 = std::chrono::steady_clock::now();
    constexpr int kClients = 6;
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
        clients.emplace_back([&] {
            try {
                TestClient c(s.port());
                c.send(post("/v1/chat/completions", chat_body(false, 4)));
                const HttpResponse r = c.response();
                if (r.status == 200 && !json::parse(r.body).at("choices").as_array()[0].at("message").at("content").as_string().empty()) ++ok;
            } catch (const std::exception&) {
            }
        });
    for (auto& t : clients) t.join();
    EXPECT_EQ(ok, kClients);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s) << "answered before the stalled clients' timeouts";

    const HttpResponse timed_out = slow.response();
    EXPECT_EQ(timed_out.status, 408);
    EXPECT_EQ(error_of(json::parse(timed_out.body)).at("type").as_string(), "invalid_request_error");
    EXPECT_TRUE(silent.closed_by_server());
}

TEST(Server, HundredsOfSlowAndAThousandIdleConnectionsDenyNobodyService) {
    constexpr int kSlow = 500, kIdle = 1000, kRequests = 20;
    constexpr rlim_t kFiles = 2 * (kSlow + kIdle) + 200;  // both ends of every connection are in this process
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < kFiles)
        GTEST_SKIP() << "needs " << kFiles << " open files; the hard RLIMIT_NOFILE is " << limit.rlim_max;
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? std::max(limit.rlim_cur, kFiles) : limit.rlim_max;  // the soft default is often 1024
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);

    FakeBackend b(1, "Once upon a time");
    b.gate.open();
    RunningServer s(b);  // the defaults: 10 s to finish a request, 30 s idle, 64 handlers
    ASSERT_GT(s.max_connections(), kSlow + kIdle);

    // Idle keep-alive connections: each has had its answer and sends nothing more.
    std::vector<std::unique_ptr<TestClient>> idle;
    for (int i = 0; i < kIdle; ++i) {
        idle.push_back(std::make_unique<TestClient>(s.port()));
        idle.back()->send(get("/health"));
        ASSERT_EQ(idle.back()->response().status, 200) << "idle connection " << i;
    }
    // Slow clients: each sends the head of a request one byte a second, and does not finish within the test.
    const std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n";
    std::vector<std::unique_ptr<TestClient>> slow;
    for (int i = 0; i < kSlow; ++i) slow.push_back(std::make_unique<TestClient>(s.port()));
    std::atomic<bool> done{false};
    std::atomic<int> dropped{0}, bytes_sent{0};
    std::thread drip([&] {
        for (std::size_t at = 0; at < head.size() && !done; ++at) {
            const auto next = std::chrono::steady_clock::now() + 1s;
            for (auto& c : slow) {
                try {
                    c->send(head.substr(at, 1));
                    ++bytes_sent;
                } catch (const std::exception&) {
                    ++dropped;
                }
            }
            while (!done && std::chrono::steady_clock::now() < next) std::this_thread::sleep_for(20ms);
        }
    });

    // A normal client meanwhile: one request after another, each on a new connection.
    int ok = 0, busy = 0;
    for (int i = 0; i < kRequests; ++i) {
        TestClient c(s.port());
        c.send(post("/v1/chat/completions", chat_body(false, 4)));
        const HttpResponse r = c.response();
        ok += r.status == 200;
        busy += r.status == 503;
        std::this_thread::sleep_for(200ms);  // spread over several of the slow clients' bytes
    }
    done = true;
    drip.join();
    EXPECT_EQ(ok, kRequests);
    EXPECT_EQ(busy, 0);
    EXPECT_EQ(dropped, 0) << "the slow clients were still within their read timeout";
    EXPECT_GE(bytes_sent, 2 * kSlow) << "the slow clients were sending while the requests were answered";
    // The idle connections were kept, not dropped to make room.
    for (int i = 0; i < kIdle; i += 100) {
        idle[std::size_t(i)]->send(get("/health"));
        EXPECT_EQ(idle[std::size_t(i)]->response().status, 200) << "idle connection " << i;
    }
}

TEST(Server, ConnectionsPastTheCapAreRefusedWith503) {
    FakeBackend b(1, "Once upon a time");
    b.gate.open();
    RunningServer s(b, {.max_connections = 2});
    ASSERT_EQ(s.max_connections(), 2);
    auto first = std::make_unique<TestClient>(s.port());
    TestClient second(s.port());
    second.send(get("/health"));
    ASSERT_EQ(second.response().status, 200);  // both are open by now: the server has answered the later one
    TestClient third(s.port());
    const HttpResponse refused = third.response();
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(error_of(json::parse(refused.body)).at("code").as_string(), "server_busy");

    first.reset();  // makes room, once the server has seen it close
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    while (status != 200 && std::chrono::steady_clock::now() < deadline) {
        TestClient next(s.port());
        next.send(get("/health"));
        status = next.response().status;
    }
    EXPECT_EQ(status, 200);
}

TEST(Server, TheConnectionCapFitsUnderTheOpenFileLimit) {
    FakeBackend b(1, "Once upon a time");
    b.gate.open();
    RunningServer s(b, {.max_connections = 100'000});
    rlimit limit{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    EXPECT_EQ(limit.rlim_cur, limit.rlim_max) << "the server raises the soft limit to the hard one";
    if (limit.rlim_cur == RLIM_INFINITY) GTEST_SKIP() << "no open-file limit to fit under";
    if (limit.rlim_cur >= 100'000 + rlim_t(serve::kReservedFds)) GTEST_SKIP() << "the open-file limit " << limit.rlim_cur << " has room for 100000 connections";
    EXPECT_EQ(s.max_connections(), int(limit.rlim_cur) - serve::kReservedFds);
}

TEST(Server, RequestsWaitForAFreeHandlerInsteadOfBeingRefused) {
    FakeBackend b(1, "Once upon a time");
    RunningServer s(b, {.max_handlers = 1});
    TestClient running(s.port());
    running.send(post("/v1/chat/completions", chat_body(true, 4)));
    ASSERT_EQ(running.head().status, 200);
    ASSERT_TRUE(b.gate.wait_for_blocked());  // the one handler is busy with this generation

    TestClient waiting(s.port(), 1s);
    waiting.send(get("/health"));
    EXPECT_THROW(waiting.response(), std::runtime_error) << "answered while the only handler was busy";
    b.gate.open();
    EXPECT_TRUE(read_stream(running).done);
    const HttpResponse r = waiting.response();
    EXPECT_EQ(r.status, 200);
}

TEST(Server, ExpectContinueGetsTheGoAheadBeforeTheBody) {
    FakeBackend b(1, "Once upon a time");
    b.gate.open();
    RunningServer s(b);
    TestClient c(s.port());
    const std::string body = chat_body(false, 2);
    c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n");
    EXPECT_EQ(c.head().status, 100);
    c.send(body);
    EXPECT_EQ(c.response().status, 200);
}

// /health's queue length, polled until it is `n` (bounded).
bool wait_for_queued(int port, int n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    TestClient c(port);
    while (std::chrono::steady_clock::now() < deadline) {
        c.send(get("/health"));
        if (json::parse(c.response().body).at("queued").as_number() == n) return true;
        std::this_thread::yield();
    }
    return false;
}

TEST(Server, QueuedRequestsAreServedInArrivalOrder) {
    FakeBackend b(1, "Once upon a time");
    RunningServer s(b);
    // Request i has i + 1 words, so the prompt lengths the model sees tell the order it served them in.
    const auto request = [](int i) {
        std::string words = "a";
        for (int k = 0; k < i; ++k) words += " a";
        return post("/v1/chat/completions", chat_body(false, 3, words));
    };
    TestClient first(s.port());
    first.send(request(0));
    ASSERT_TRUE(b.gate.wait_for_blocked());

    std::atomic<int> ok{0};
    std::vector<std::thread> waiting;
    for (int i = 1; i <= 3; ++i) {
        waiting.emplace_back([&, i] {
            try {
                TestClient c(s.port());
                c.send(request(i));
                if (c.response().status == 200) ++ok;
            } catch (const std::exception&) {
            }
        });
        const bool queued = wait_for_queued(s.port(), i);  // the next arrives strictly after this one queued
        EXPECT_TRUE(queued);
        if (!queued) break;
    }
    b.gate.open();
    EXPECT_EQ(first.response().status, 200);
    for (auto& t : waiting) t.join();
    EXPECT_EQ(ok, 3);
    const auto prompts = b.gate.prompts();
    ASSERT_EQ(prompts.size(), 4u);
    EXPECT_EQ(std::adjacent_find(prompts.begin(), prompts.end(), std::greater_equal<>()), prompts.end()) << "served out of arrival order";
    TestClient c(s.port());
    c.send(get("/health"));
    const json::Value health = json::parse(c.response().body);
    EXPECT_EQ(health.at("served").as_number(), 4);
    EXPECT_EQ(health.at("slots").as_number(), 1);
}

TEST(Server, ErrorsComeInOpenAIShapeWithTheirStatus) {
    FakeBackend b(1, "Once upon a time", 32);
    b.gate.open();
    RunningServer s(b, {.limits = {.max_body = 4096}});
    TestClient c(s.port());
    const auto expect_error = [&](const std::string& request, int status, const std::string& fragment, const char* param = nullptr,
                                  const char* code = nullptr) {
        c.send(request);
        const HttpResponse r = c.response();
        EXPECT_EQ(r.status, status) << request.substr(0, 80);
        EXPECT_EQ(r.headers.at("content-type"), "application/json");
        const json::Value e = error_of(json::parse(r.body));
        EXPECT_NE(e.at("message").as_string().find(fragment), std::string::npos) << e.at("message").as_string();
        EXPECT_TRUE(e.at("type").is_string());
        if (param) {
            EXPECT_EQ(e.at("param").as_string(), param);
        }
        if (code) {
            EXPECT_EQ(e.at("code").as_string(), code);
        }
        return r;
    };
    expect_error(get("/v1/nothing"), 404, "/v1/nothing");
    EXPECT_EQ(expect_error(get("/v1/chat/completions"), 405, "POST").headers.at("allow"), "POST, OPTIONS");
    expect_error(post("/v1/chat/completions", "{\"messages\": [}"), 400, "not valid JSON");
    expect_error(post("/v1/chat/completions", "{}"), 400, "'messages' is required", "messages");
    expect_error(post("/v1/chat/completions", chat_body(false, 4, std::string(300, 'x'))), 400, "context", "messages",
                 "context_length_exceeded");
    // The connection survived every error above (they are answers, not protocol failures).
    c.send(get("/health") + get("/v1/models"));  // pipelined
    EXPECT_EQ(c.response().status, 200);
    const HttpResponse models = c.response();
    EXPECT_EQ(json::parse(models.body).at("data").as_array()[0].at("id").as_string(), "fake");

    // Protocol failures are answered, then the connection is closed.
    TestClient big(s.port());
    big.send(post("/v1/chat/completions", std::string(5000, ' ')));
    const HttpResponse too_large = big.response();
    EXPECT_EQ(too_large.status, 413);
    EXPECT_NE(error_of(json::parse(too_large.body)).at("message").as_string().find("4096"), std::string::npos);
    EXPECT_TRUE(big.closed_by_server());
    TestClient garbage(s.port());
    garbage.send("HELLO\r\n\r\n");
    EXPECT_EQ(garbage.response().status, 400);
    EXPECT_TRUE(garbage.closed_by_server());
}

TEST(Server, StopFinishesRunningRequestsAndRefusesQueuedOnes) {
    FakeBackend b(1, "Once upon a time");
    RunningServer s(b);
    const int port = s.port();
    TestClient running(port), queued(port);
    running.send(post("/v1/chat/completions", chat_body(true, 4)));
    ASSERT_EQ(running.head().status, 200);
    ASSERT_TRUE(b.gate.wait_for_blocked());
    queued.send(post("/v1/chat/completions", chat_body(false, 4)));
    ASSERT_TRUE(wait_for_queued(s.port(), 1));

    s.stop();
    const HttpResponse refused = queued.response();
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(error_of(json::parse(refused.body)).at("code").as_string(), "shutting_down");
    b.gate.open();
    const Stream st = read_stream(running);
    EXPECT_TRUE(st.done);
    EXPECT_EQ(st.finish_reason, "length");
    s.join();
    EXPECT_THROW(TestClient{port}, std::runtime_error) << "no longer listening";
}

}  // namespace
}  // namespace forge::test
