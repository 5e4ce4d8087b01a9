// A load generator for OpenAI-compatible servers (forge serve, llama-server): streamed POST /v1/completions
// over plain loopback sockets, timed on the client's clock, so both servers are measured the same way.
//
//   serve_load streams --port P [--streams 1,2,4,8,16] [--max-tokens 64] [--prompt-tokens 64] [--rounds 2] [--label NAME]
//   serve_load conversation --port P [--prompt-tokens 1000] [--max-tokens 32] [--follow-up-tokens 30] [--conversations 3]
//                           [--label NAME]
//
// streams: for each concurrency C, C threads each send --rounds requests one after the other, each with a
// prompt of its own (no two requests share more than a few leading tokens, so no cache is reused). Time to
// first token: request sent -> first event carrying text. Aggregate decode rate: the tokens all requests
// generated (usage.completion_tokens of each stream's last event) / the wall time from the first request
// sent to the last reply. One markdown row per concurrency.
// conversation: turn 1 a prompt of about --prompt-tokens tokens, turn 2 that prompt + turn 1's reply + about
// --follow-up-tokens new tokens; each turn's TTFT, their ratio and the prompt tokens turn 2 found cached.
// --conversations of them one after another, each with its own text, and a last row of the medians (one
// conversation's ratio moves with whatever else the machine is doing).
//
// Prompt lengths are in the server's tokens: a first, unstreamed request measures how many tokens a word
// of the generated text takes (usage.prompt_tokens) and the prompts are sized from that.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "forge/core/error.hpp"
#include "forge/json/json.hpp"

using namespace forge;

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// One HTTP/1.1 exchange on its own connection (Connection: close), the response body read as it arrives
// so each Server-Sent Event gets the time it was received.
class Exchange {
public:
    Exchange(int port, std::string_view path, const std::string& body) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close_fd();
            throw Error("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
        }
        const std::string request = "POST " + std::string(path) +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        sent_ = Clock::now();
        for (std::string_view rest = request; !rest.empty();) {
            const ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Error(std::string("send failed: ") + std::strerror(errno));
            rest.remove_prefix(std::size_t(n));
        }
        read_head();
    }
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;
    ~Exchange() { close_fd(); }

    Clock::time_point sent() const { return sent_; }
    int status() const { return status_; }

    // The next event's data ("data: X" lines joined), or nullopt at the end of the body.
    std::optional<std::string> next_event() {
        for (;;) {
            std::size_t end = body_.find("\n\n");
            if (end != std::string::npos) {
                const std::string event = body_.substr(0, end);
                body_.erase(0, end + 2);
                std::string data;
                for (std::size_t at = 0; at < event.size();) {
                    std::size_t eol = event.find('\n', at);
                    if (eol == std::string::npos) eol = event.size();
                    std::string_view line(event.data() + at, eol - at);
                    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                    if (line.starts_with("data:")) {
                        line.remove_prefix(line.starts_with("data: ") ? 6 : 5);
                        if (!data.empty()) data += '\n';
                        data += line;
                    } else if (line.starts_with("error:")) {  // llama-server's own error event
                        throw Error("server error event: " + std::string(line));
                    }
                    at = eol + 1;
                }
                if (!data.empty()) return data;
                continue;
            }
            if (!read_body()) return std::nullopt;
            // An event separated by CRLF pairs reads as one with "\r\n\r\n"; fold those to "\n".
            for (std::size_t p; (p = body_.find("\r\n")) != std::string::npos;) body_.erase(p, 1);
        }
    }
    // The whole remaining body.
    std::string rest() {
        while (read_body()) {
        }
        return std::exchange(body_, std::string());
    }

private:
    static constexpr int kTimeoutMs = 600'000;  // a long generation on a busy machine, not a hung server

    void close_fd() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // Raw bytes onto raw_; false at end of stream.
    bool fill() {
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, kTimeoutMs);
        if (r == 0) throw Error("no reply for " + std::to_string(kTimeoutMs / 1000) + " s");
        if (r < 0 && errno != EINTR) throw Error(std::string("poll failed: ") + std::strerror(errno));
        char buf[16384];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) return true;
        if (n < 0) throw Error(std::string("recv failed: ") + std::strerror(errno));
        raw_.append(buf, std::size_t(n));
        return n > 0;
    }
    void read_head() {
        std::size_t end;
        while ((end = raw_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) throw Error("the connection closed before a response");
        const std::string head = raw_.substr(0, end);
        raw_.erase(0, end + 4);
        if (head.size() < 12 || !head.starts_with("HTTP/1.")) throw Error("not an HTTP response: " + head.substr(0, 40));
        status_ = std::atoi(head.c_str() + 9);
        std::string lower(head);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        chunked_ = lower.find("transfer-encoding: chunked") != std::string::npos;
        if (const auto cl = lower.find("content-length:"); cl != std::string::npos)
            remaining_ = std::strtoull(lower.c_str() + cl + 15, nullptr, 10);
    }
    // Decoded body bytes onto body_; false once the body has ended.
    bool read_body() {
        if (done_) return false;
        if (!chunked_) {
            if (raw_.empty() && !fill()) return done_ = true, false;
            const std::size_t take = remaining_ ? std::min<std::size_t>(*remaining_, raw_.size()) : raw_.size();
            body_.append(raw_, 0, take);
            raw_.erase(0, take);
            if (remaining_ && (*remaining_ -= take) == 0) done_ = true;
            return true;
        }
        for (;;) {
            const std::size_t eol = raw_.find("\r\n");
            if (eol != std::string::npos) {
                const std::size_t size = std::strtoull(raw_.c_str(), nullptr, 16);
                if (size == 0) return done_ = true, false;
                if (raw_.size() >= eol + 2 + size + 2) {
                    body_.append(raw_, eol + 2, size);
                    raw_.erase(0, eol + 2 + size + 2);
                    return true;
                }
            }
            if (!fill()) throw Error("the connection closed inside a chunked body");
        }
    }

    int fd_ = -1;
    Clock::time_point sent_;
    int status_ = 0;
    bool chunked_ = false, done_ = false;
    std::optional<std::size_t> remaining_;
    std::string raw_, body_;
};

std::string error_text(int status, const std::string& body) {
    return "HTTP " + std::to_string(status) + ": " + body.substr(0, 400);
}

const json::Value* path(const json::Value& v, std::initializer_list<std::string_view> keys) {
    const json::Value* at = &v;
    for (auto k : keys)
        if (!(at = at->find(k))) return nullptr;
    return at;
}

// A completion's measurements.
struct Reply {
    std::string text;
    int events_with_text = 0;
    int completion_tokens = 0;  // from usage; the events' count when the server gives none
    int prompt_tokens = 0;
    std::optional<int> cached_tokens;  // usage.prompt_tokens_details.cached_tokens, else llama-server's timings.cache_n
    Clock::time_point sent, first_text, last_text, last_event;
    double ttft_ms() const { return ms_between(sent, first_text); }
    // Generation rate after the first token, as a client sees it.
    double decode_rate() const {
        const double s = ms_between(first_text, last_text) / 1000;
        return completion_tokens > 1 && s > 0 ? (completion_tokens - 1) / s : 0;
    }
};

void read_usage(const json::Value& event, Reply& r) {
    if (const json::Value* u = event.find("usage"); u && u->is_object()) {
        if (const json::Value* n = u->find("completion_tokens")) r.completion_tokens = int(n->as_number());
        if (const json::Value* n = u->find("prompt_tokens")) r.prompt_tokens = int(n->as_number());
        if (const json::Value* n = path(*u, {"prompt_tokens_details", "cached_tokens"})) r.cached_tokens = int(n->as_number());
    }
    if (!r.cached_tokens)
        if (const json::Value* n = path(event, {"timings", "cache_n"})) r.cached_tokens = int(n->as_number());
}

struct Request {
    std::string prompt;
    int max_tokens = 64;
    std::uint64_t seed = 0;
};

std::string body_of(const Request& q, bool stream) {
    json::Object o{{"prompt", q.prompt},
                   {"max_tokens", q.max_tokens},
                   {"temperature", 1.0},
                   {"seed", std::int64_t(q.seed)},
                   // llama-server generates max_tokens whatever it samples; forge ignores the field and may
                   // stop at end-of-sequence, which a random-weight model samples about once in the vocabulary's size.
                   {"ignore_eos", true},
                   {"stream", stream}};
    if (stream) o.emplace_back("stream_options", json::Object{{"include_usage", true}});
    return json::dump(json::Value(std::move(o)));
}

Reply complete_streamed(int port, const Request& q) {
    Exchange x(port, "/v1/completions", body_of(q, true));
    if (x.status() != 200) throw Error(error_text(x.status(), x.rest()));
    Reply r;
    r.sent = x.sent();
    while (auto data = x.next_event()) {
        if (*data == "[DONE]") break;
        r.last_event = Clock::now();
        const json::Value ev = json::parse(*data);
        if (const json::Value* err = ev.find("error")) throw Error("error event: " + json::dump(*err));
        if (const json::Value* text = path(ev, {"choices"}); text && text->is_array() && !text->as_array().empty())
            if (const json::Value* t = text->as_array()[0].find("text"); t && t->is_string() && !t->as_string().empty()) {
                if (r.events_with_text++ == 0) r.first_text = r.last_event;
                r.last_text = r.last_event;
                r.text += t->as_string();
            }
        read_usage(ev, r);
    }
    if (r.events_with_text == 0) throw Error("a streamed reply carried no text");
    if (r.completion_tokens == 0) r.completion_tokens = r.events_with_text;
    return r;
}

// An unstreamed completion: its usage (prompt_tokens) and nothing timed.
Reply complete(int port, const Request& q) {
    Exchange x(port, "/v1/completions", body_of(q, false));
    const std::string body = x.rest();
    if (x.status() != 200) throw Error(error_text(x.status(), body));
    Reply r;
    read_usage(json::parse(body), r);
    if (r.prompt_tokens == 0) throw Error("the reply gives no usage.prompt_tokens: " + body.substr(0, 400));
    return r;
}

// Text of `words` everyday words drawn from a generator seeded by `seed`, led by the seed's own digits so
// that two seeds' texts part after a few tokens.
std::string words_text(std::uint64_t seed, int words) {
    static constexpr const char* kWords[] = {
        "the",    "river",  "carried", "small",   "boats",  "past",   "green",  "hills",   "while",  "children",
        "watched", "from",  "a",       "bridge",  "made",   "of",     "old",    "stone",   "and",    "wood",
        "every",  "morning", "baker",  "opened",  "his",    "shop",   "early",  "bread",   "smelled", "warm",
        "people", "walked", "through", "narrow",  "streets", "toward", "market", "square",  "where",  "sellers",
        "called", "out",    "prices",  "for",     "apples", "cheese", "fish",   "flowers", "rain",   "fell",
        "softly", "on",     "roofs",   "tired",   "horses", "waited", "near",   "gate",    "until",  "evening"};
    std::mt19937_64 rng(seed);
    std::string text = std::to_string(seed);
    for (int i = 0; i < words; ++i) {
        text += ' ';
        text += kWords[rng() % std::size(kWords)];
        if (rng() % 12 == 0) text += rng() % 2 ? "," : ".";
    }
    return text;
}

// Tokens per word of words_text, as the server counts them (with whatever it adds, such as BOS).
double tokens_per_word(int port) {
    constexpr int kWords = 400;
    const Reply r = complete(port, {.prompt = words_text(999'983, kWords), .max_tokens = 1, .seed = 1});
    return double(r.prompt_tokens) / kWords;
}

int words_for(int tokens, double per_word) { return std::max(1, int(std::lround(tokens / per_word))); }

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t rank = std::size_t(std::ceil(p * double(v.size())));  // nearest rank
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct Options {
    std::string mode, label = "server";
    int port = 0;
    std::vector<int> streams{1, 2, 4, 8, 16};
    int max_tokens = 0, prompt_tokens = 0, rounds = 2, follow_up_tokens = 30, conversations = 3;
};

void run_streams(const Options& o) {
    const int max_tokens = o.max_tokens ? o.max_tokens : 64, prompt_tokens = o.prompt_tokens ? o.prompt_tokens : 64;
    const int words = words_for(prompt_tokens, tokens_per_word(o.port));
    std::printf("| server | streams | aggregate tok/s | per-stream tok/s (median) | TTFT median ms | TTFT p90 ms | prompt tokens |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const int c : o.streams) {
        std::vector<Reply> replies(std::size_t(c) * std::size_t(o.rounds));
        std::vector<std::exception_ptr> errors{std::size_t(c)};
        std::vector<std::thread> threads;
        for (int s = 0; s < c; ++s)
            threads.emplace_back([&, s] {
                try {
                    for (int round = 0; round < o.rounds; ++round) {
                        // Distinct per concurrency, stream and round: no request finds another's prompt cached.
                        const std::uint64_t id = std::uint64_t(c) * 100'000 + std::uint64_t(s) * 100 + std::uint64_t(round);
                        replies[std::size_t(s * o.rounds + round)] =
                            complete_streamed(o.port, {.prompt = words_text(id, words), .max_tokens = max_tokens, .seed = id});
                    }
                } catch (...) {
                    errors[std::size_t(s)] = std::current_exception();
                }
            });
        for (auto& t : threads) t.join();
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
        Clock::time_point first = replies[0].sent, last = replies[0].last_event;
        long tokens = 0, events = 0, prompt = 0;
        std::vector<double> ttft, rate;
        for (const Reply& r : replies) {
            first = std::min(first, r.sent);
            last = std::max(last, r.last_event);
            tokens += r.completion_tokens;
            events += r.events_with_text;
            prompt += r.prompt_tokens;
            ttft.push_back(r.ttft_ms());
            rate.push_back(r.decode_rate());
        }
        std::printf("| %s | %d | %.1f | %.1f | %.0f | %.0f | %ld |\n", o.label.c_str(), c, double(tokens) / (ms_between(first, last) / 1000),
                    percentile(rate, 0.5), percentile(ttft, 0.5), percentile(ttft, 0.9), prompt / long(replies.size()));
        // A token whose text ends inside a UTF-8 character is sent with the next one; say when that happened.
        if (events != tokens)
            std::fprintf(stderr, "%s, %d streams: %ld tokens arrived in %ld events with text\n", o.label.c_str(), c, tokens, events);
        std::fflush(stdout);
    }
}

void run_conversation(const Options& o) {
    const int max_tokens = o.max_tokens ? o.max_tokens : 32, prompt_tokens = o.prompt_tokens ? o.prompt_tokens : 1000;
    const double per_word = tokens_per_word(o.port);
    const auto cached = [](const Reply& r) { return r.cached_tokens ? std::to_string(*r.cached_tokens) : std::string("-"); };
    std::printf("| server | conversation | turn | prompt tokens | cached tokens | TTFT ms | TTFT / turn 1's |\n|---|---:|---:|---:|---:|---:|---:|\n");
    std::vector<double> first, second, ratio;
    for (int c = 1; c <= o.conversations; ++c) {
        const std::uint64_t seed = 2 * std::uint64_t(c) - 1;
        const std::string turn1 = words_text(seed, words_for(prompt_tokens, per_word));
        const Reply r1 = complete_streamed(o.port, {.prompt = turn1, .max_tokens = max_tokens, .seed = 1});
        // The new text is a sentence of its own after the reply, as a user's next message would be.
        const std::string turn2 = turn1 + r1.text + "\n" + words_text(seed + 1, words_for(o.follow_up_tokens, per_word));
        const Reply r2 = complete_streamed(o.port, {.prompt = turn2, .max_tokens = max_tokens, .seed = 2});
        first.push_back(r1.ttft_ms());
        second.push_back(r2.ttft_ms());
        ratio.push_back(second.back() / first.back());
        std::printf("| %s | %d | 1 | %d | %s | %.0f | |\n", o.label.c_str(), c, r1.prompt_tokens, cached(r1).c_str(), first.back());
        std::printf("| %s | %d | 2 | %d | %s | %.0f | %.2f |\n", o.label.c_str(), c, r2.prompt_tokens, cached(r2).c_str(), second.back(),
                    ratio.back());
    }
    std::printf("| %s | median | 1, 2 | | | %.0f, %.0f | %.2f |\n", o.label.c_str(), percentile(first, 0.5), percentile(second, 0.5),
                percentile(ratio, 0.5));
    std::fflush(stdout);
}

int positive(const std::string& flag, const std::string& v) {
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 1'000'000) throw Error(flag + " must be a positive integer, not '" + v + "'");
    return int(n);
}

Options parse(int argc, char** argv) {
    if (argc < 2) throw Error("usage: serve_load streams|conversation --port P [options] (see the source's header)");
    Options o;
    o.mode = argv[1];
    if (o.mode != "streams" && o.mode != "conversation") throw Error("unknown mode '" + o.mode + "' (streams or conversation)");
    for (int i = 2; i < argc; i += 2) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) throw Error(flag + " needs a value");
        const std::string v = argv[i + 1];
        if (flag == "--port") o.port = positive(flag, v);
        else if (flag == "--label") o.label = v;
        else if (flag == "--max-tokens") o.max_tokens = positive(flag, v);
        else if (flag == "--prompt-tokens") o.prompt_tokens = positive(flag, v);
        else if (flag == "--rounds") o.rounds = positive(flag, v);
        else if (flag == "--conversations") o.conversations = positive(flag, v);
        else if (flag == "--follow-up-tokens") o.follow_up_tokens = positive(flag, v);
        else if (flag == "--streams") {
            o.streams.clear();
            for (std::size_t at = 0; at <= v.size();) {
                const std::size_t comma = std::min(v.find(',', at), v.size());
                o.streams.push_back(positive(flag, v.substr(at, comma - at)));
                at = comma + 1;
            }
        } else {
            throw Error("unknown option '" + flag + "'");
        }
    }
    if (o.port == 0) throw Error("--port is required");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        if (o.mode == "streams") run_streams(o);
        else run_conversation(o);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "serve_load: %s\n", e.what());
        return 1;
    }
}
