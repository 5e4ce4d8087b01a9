// libFuzzer target for the HTTP request parser. The first input byte picks a split size; the rest is
// what a peer sends. The same bytes fed whole and fed in pieces must give the same requests and the same
// verdict (a parser that depends on how reads happen to fall is a smuggling bug), every limit must
// hold, what the parser buffers between pieces must stay bounded (chunk extensions and framing cost
// nothing kept), and a complete request's body sent back chunked by forge's writer must parse to the
// same body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forge/serve/http.hpp"

namespace {

using namespace forge::serve::http;

constexpr Limits kLimits{.max_request_line = 256, .max_header_bytes = 1024, .max_headers = 16, .max_body = 4096, .max_request_bytes = 6144};
// What a parser may hold between reads: the decoded body, plus an unfinished head or chunk-size line (at
// most 1024 bytes either way), plus the bytes of one read.

struct Outcome {
    std::vector<Request> requests;
    bool failed = false;
};

bool same(const Request& a, const Request& b) {
    return a.method == b.method && a.target == b.target && a.minor_version == b.minor_version && a.headers == b.headers &&
           a.body == b.body && a.keep_alive == b.keep_alive;
}

Outcome parse(std::string_view input, std::size_t step) {
    RequestParser p(kLimits);
    Outcome out;
    for (std::size_t at = 0; at < input.size() && !out.failed; at += step) {
        p.feed(input.substr(at, step));
        p.take_continue();
        Request r;
        RequestParser::State s;
        while ((s = p.next(r)) == RequestParser::State::complete) {
            if (r.method.empty() || r.target.empty() || r.body.size() > kLimits.max_body || r.headers.size() > kLimits.max_headers)
                __builtin_trap();
            out.requests.push_back(std::move(r));
        }
        // Fed piece by piece, a parser holds what it still needs, never every byte the request sent.
        if (s == RequestParser::State::incomplete && p.buffered_bytes() > kLimits.max_body + kLimits.max_header_bytes + step + 2)
            __builtin_trap();
        if (s == RequestParser::State::error) {
            const int status = p.failure().status;
            if (status < 400 || status > 505 || reason_phrase(status) == "Unknown" || p.failure().message.empty()) __builtin_trap();
            Request again;
            p.feed("GET / HTTP/1.1\r\n\r\n");
            if (p.next(again) != RequestParser::State::error) __builtin_trap();  // an error is final
            out.failed = true;
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t step = data[0] % 16 + 1;
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    const Outcome whole = parse(input, input.size() + 1), pieces = parse(input, step);
    if (whole.failed != pieces.failed || whole.requests.size() != pieces.requests.size()) __builtin_trap();
    for (std::size_t i = 0; i < whole.requests.size(); ++i)
        if (!same(whole.requests[i], pieces.requests[i])) __builtin_trap();

    for (const Request& r : whole.requests) {
        RequestParser p(kLimits);
        p.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(r.body) + std::string(kLastChunk));
        Request back;
        if (p.next(back) != RequestParser::State::complete || back.body != r.body) __builtin_trap();
    }
    return 0;
}
