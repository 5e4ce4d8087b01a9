// The HTTP request parser against well-formed traffic, split at every byte, and against hostile input:
// every limit answers with its own status, every malformation with 400, and an error is final.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "forge/serve/http.hpp"

namespace forge::serve::http {
namespace {

using State = RequestParser::State;
using namespace std::string_literals;

struct Parsed {
    std::vector<Request> requests;
    State last = State::incomplete;
    Failure failure;
};

// Feeds `input` in pieces of `step` bytes (0: all at once), collecting every complete request.
Parsed parse_all(const std::string& input, std::size_t step = 0, Limits limits = {}) {
    RequestParser p(limits);
    Parsed out;
    const std::size_t n = step == 0 ? input.size() : step;
    for (std::size_t at = 0; at < input.size() && out.last != State::error; at += n) {
        p.feed(std::string_view(input).substr(at, n));
        Request r;
        while ((out.last = p.next(r)) == State::complete) out.requests.push_back(std::move(r));
    }
    out.failure = p.failure();
    return out;
}

Failure parse_error(const std::string& input, Limits limits = {}) {
    const Parsed p = parse_all(input, 0, limits);
    EXPECT_EQ(p.last, State::error) << input.substr(0, 200);
    return p.failure;
}

TEST(HttpParser, ParsesAGetWithHeaders) {
    const Parsed p = parse_all("GET /v1/models?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Thing:  spaced value \t\r\n\r\n");
    ASSERT_EQ(p.requests.size(), 1u);
    const Request& r = p.requests[0];
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/v1/models?x=1");
    EXPECT_EQ(r.path(), "/v1/models");
    EXPECT_EQ(r.minor_version, 1);
    ASSERT_NE(r.header("x-thing"), nullptr);
    EXPECT_EQ(*r.header("x-thing"), "spaced value");
    EXPECT_EQ(r.header("X-Thing"), nullptr) << "names are stored lower-case";
    EXPECT_TRUE(r.body.empty());
    EXPECT_TRUE(r.keep_alive);
    EXPECT_EQ(p.last, State::incomplete);
}

TEST(HttpParser, KeepAliveFollowsVersionAndConnectionHeader) {
    const auto keep = [](const std::string& head) {
        const Parsed p = parse_all(head + "\r\n");
        EXPECT_EQ(p.requests.size(), 1u) << head;
        return !p.requests.empty() && p.requests[0].keep_alive;
    };
    EXPECT_TRUE(keep("GET / HTTP/1.1\r\n"));
    EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: Close\r\n"));
    EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n"));
    EXPECT_FALSE(keep("GET / HTTP/1.0\r\n"));
    EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"));
}

TEST(HttpParser, ContentLengthAndChunkedBodiesSurviveAnySplit) {
    const std::string length_req = "POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
    const std::string chunked_req =
        "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n1;ext=\"x\"\r\n \r\n5\r\nworld\r\n0\r\nTrailer-Field: t\r\n\r\n";
    for (const std::size_t step : {0, 1, 2, 3, 7}) {
        const Parsed a = parse_all(length_req, step);
        ASSERT_EQ(a.requests.size(), 1u) << step;
        EXPECT_EQ(a.requests[0].body, "hello world");
        const Parsed b = parse_all(chunked_req, step);
        ASSERT_EQ(b.requests.size(), 1u) << step;
        EXPECT_EQ(b.requests[0].body, "hello world");
        EXPECT_EQ(b.requests[0].path(), "/b");
    }
}

TEST(HttpParser, PipelinedRequestsComeOutInOrder) {
    const std::string two = "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\n\r\n\r\nGET /3 HTTP/1.1\r\n\r\nGET /4";
    for (const std::size_t step : {0, 1, 5}) {
        const Parsed p = parse_all(two, step);
        ASSERT_EQ(p.requests.size(), 3u) << step;
        EXPECT_EQ(p.requests[0].body, "abc");
        EXPECT_EQ(p.requests[1].target, "/2");
        EXPECT_EQ(p.requests[2].target, "/3") << "a blank line between requests is allowed";
        EXPECT_EQ(p.last, State::incomplete) << "the fourth has only begun";
    }
    RequestParser p;
    EXPECT_TRUE(p.idle());
    p.feed("GET");
    EXPECT_FALSE(p.idle());
}

TEST(HttpParser, ExpectContinueIsOfferedOnceAndOnlyForABody) {
    RequestParser p;
    Request r;
    p.feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    EXPECT_EQ(p.next(r), State::incomplete);
    EXPECT_TRUE(p.take_continue());
    EXPECT_FALSE(p.take_continue());
    p.feed("hi");
    EXPECT_EQ(p.next(r), State::complete);
    EXPECT_EQ(r.body, "hi");
    EXPECT_FALSE(p.take_continue());
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n").status, 417);
}

TEST(HttpParser, EnforcesEachSizeLimitWithItsStatus) {
    const Limits small{.max_request_line = 64, .max_header_bytes = 256, .max_headers = 4, .max_body = 100};
    // Refused as soon as the limit is passed, before the line or head ends.
    EXPECT_EQ(parse_error("GET /" + std::string(100, 'a'), small).status, 414);
    EXPECT_EQ(parse_error("GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", small).status, 414);
    // Exactly at the limit is fine however the bytes arrive, even when a read ends between CR and LF.
    EXPECT_EQ(parse_all("GET /" + std::string(50, 'a') + " HTTP/1.1\r\n\r\n", 1, small).requests.size(), 1u);
    EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nX: " + std::string(300, 'v'), small).status, 431);
    EXPECT_EQ(parse_error("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", small).status, 431);
    EXPECT_EQ(parse_all("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0, small).requests.size(), 1u);
    // A declared body over the limit is refused before any of it is read.
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", small).status, 413);
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", small).status, 413);
    EXPECT_EQ(parse_all("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), 0, small).requests.size(), 1u);
    // Chunked bodies are counted chunk by chunk, and a chunk size cannot overflow.
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'x') + "\r\n40\r\n", small).status, 413);
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\n", small).status, 413);
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(300, 't'), small).status, 431);
}

// 1-byte chunks, each with a chunk extension of `ext` bytes: a thousand raw bytes per body byte.
std::string extension_chunks(int chunks, std::size_t ext) {
    std::string out;
    for (int i = 0; i < chunks; ++i) out += "1;" + std::string(ext, 'e') + "\r\nx\r\n";
    return out;
}

TEST(HttpParser, RawBytesOfARequestAreBoundedChunkFramingIncluded) {
    const Limits small{.max_body = 100, .max_request_bytes = 4096};
    const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    // 5 body bytes, far under max_body, in ~5 KB of framing: refused, the same however the bytes arrive.
    const std::string flood = head + extension_chunks(5, 1000) + "0\r\n\r\n";
    for (const std::size_t step : {0, 1, 7, 1000}) {
        const Parsed p = parse_all(flood, step, small);
        EXPECT_EQ(p.last, State::error) << step;
        EXPECT_EQ(p.failure.status, 413) << step;
        EXPECT_NE(p.failure.message.find("4096 bytes as sent"), std::string::npos) << p.failure.message;
    }
    // Under the raw limit the same shape is a request like any other.
    const Parsed ok = parse_all(head + extension_chunks(3, 1000) + "0\r\n\r\n", 1, small);
    ASSERT_EQ(ok.requests.size(), 1u);
    EXPECT_EQ(ok.requests[0].body, "xxx");
    // A Content-Length request is counted too.
    const Limits tight{.max_body = 100, .max_request_bytes = 120};
    EXPECT_EQ(parse_error("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), tight).status, 413);
}

TEST(HttpParser, HoldsOnlyTheDecodedBodyAndOneUnfinishedLine) {
    // No raw limit here: what the parser keeps must be bounded by itself, not by the limit cutting it off.
    const Limits no_raw_limit{.max_request_bytes = std::size_t(1) << 40};
    RequestParser p(no_raw_limit);
    p.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = extension_chunks(1, 1000);
    std::size_t most = 0;
    Request r;
    for (int i = 0; i < 5000; ++i) {  // 5 MB sent, 5000 body bytes
        // Split inside the extension, as reads fall.
        p.feed(std::string_view(chunk).substr(0, 500));
        ASSERT_EQ(p.next(r), State::incomplete);
        most = std::max(most, p.buffered_bytes());
        p.feed(std::string_view(chunk).substr(500));
        ASSERT_EQ(p.next(r), State::incomplete);
        most = std::max(most, p.buffered_bytes());
    }
    EXPECT_LE(most, 5000u + 1024u) << "the decoded body and at most one chunk-size line";
    p.feed("0\r\n\r\n");
    ASSERT_EQ(p.next(r), State::complete);
    EXPECT_EQ(r.body, std::string(5000, 'x'));
}

TEST(HttpParser, RejectsMalformedRequestLines) {
    for (const char* bad : {"GET\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                            " GET / HTTP/1.1\r\n\r\n", "GET / HTTP/1\r\n\r\n", "GET / HTTX/1.1\r\n\r\n", "GET / HTTP/1.a\r\n\r\n",
                            "GET /\x01 HTTP/1.1\r\n\r\n", "GET /\xff HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\n\n", "GET / HTTP/1.1\r\nA: b\n\r\n\r\n"}) {
        const Failure f = parse_error(bad);
        EXPECT_EQ(f.status, 400) << bad << " -> " << f.message;
    }
    EXPECT_EQ(parse_error("GET / HTTP/2.0\r\n\r\n").status, 505);
}

TEST(HttpParser, RejectsMalformedHeaders) {
    const auto status = [](const std::string& headers) { return parse_error("POST / HTTP/1.1\r\n" + headers + "\r\n").status; };
    EXPECT_EQ(status("A: 1\r\n folded\r\n"), 400);
    EXPECT_EQ(status(": no name\r\n"), 400);
    EXPECT_EQ(status("No colon\r\n"), 400);
    EXPECT_EQ(status("Bad Name: x\r\n"), 400);
    EXPECT_EQ(status("A: nul\0here\r\n"s), 400);
    EXPECT_EQ(status("A: del\x7f\r\n"), 400);
    EXPECT_EQ(status("Content-Length: -1\r\n"), 400);
    EXPECT_EQ(status("Content-Length: 1x\r\n"), 400);
    EXPECT_EQ(status("Content-Length:\r\n"), 400);
    EXPECT_EQ(status("Content-Length: 1\r\nContent-Length: 2\r\n"), 400);
    EXPECT_EQ(status("Content-Length: 1\r\nTransfer-Encoding: chunked\r\n"), 400);
    EXPECT_EQ(status("Transfer-Encoding: gzip, chunked\r\n"), 501);
    EXPECT_EQ(status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 501);
    EXPECT_EQ(parse_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status, 400);
    // Repeating the same length is allowed.
    EXPECT_EQ(parse_all("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx").requests.size(), 1u);
}

TEST(HttpParser, RejectsMalformedChunkedBodies) {
    const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (const std::string body : {"\r\n", "x\r\n", "-1\r\n", "5;\x01\r\n", "5\r\nhelloXY", "5 x\r\n", "0x5\r\n"}) {
        const Failure f = parse_error(head + body);
        EXPECT_EQ(f.status, 400) << body << " -> " << f.message;
    }
    EXPECT_EQ(parse_error(head + std::string(2000, '1')).status, 400) << "unbounded chunk-size line";
    EXPECT_EQ(parse_all(head + std::string(1023, '0') + "1\r\nx\r\n0\r\n\r\n", 1).requests.size(), 1u) << "a 1024-byte size line";
    EXPECT_EQ(parse_error(head + "0\r\nbad trailer\r\n\r\n").status, 400);
}

TEST(HttpParser, AnErrorIsFinal) {
    RequestParser p;
    Request r;
    p.feed("BAD\r\n\r\n");
    EXPECT_EQ(p.next(r), State::error);
    p.feed("GET / HTTP/1.1\r\n\r\n");
    EXPECT_EQ(p.next(r), State::error);
}

TEST(HttpWriter, ResponsesChunksAndEvents) {
    EXPECT_EQ(response(404, "application/json", "{}", false, {{"Allow", "GET"}}),
              "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nAllow: GET\r\n\r\n{}");
    EXPECT_NE(sse_head(true).find("Content-Type: text/event-stream\r\n"), std::string::npos);
    EXPECT_NE(sse_head(true).find("Transfer-Encoding: chunked\r\n"), std::string::npos);
    EXPECT_EQ(chunk(std::string(26, 'z')), "1a\r\n" + std::string(26, 'z') + "\r\n");
    EXPECT_EQ(chunk(""), "") << "an empty chunk would end the body";
    EXPECT_EQ(sse_event("[DONE]"), "e\r\ndata: [DONE]\n\n\r\n");
    // What the writer produces, the parser reads back.
    RequestParser p;
    Request r;
    p.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("abc") + chunk("de") + std::string(kLastChunk));
    ASSERT_EQ(p.next(r), State::complete);
    EXPECT_EQ(r.body, "abcde");
}

}  // namespace
}  // namespace forge::serve::http
