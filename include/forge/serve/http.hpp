#pragma once
// HTTP/1.1 for the server, written for hostile peers: an incremental request parser with every size
// bounded (request line, header count and bytes, body, chunk-size lines, the raw bytes of a whole
// request), Content-Length and chunked bodies, keep-alive and pipelining; and the bytes of responses,
// chunked bodies and Server-Sent Events. What the parser holds is bounded too: bytes are dropped as soon
// as they are parsed, so a request costs its decoded body plus at most one unfinished line.
// No sockets here: the parser eats bytes and the writers return strings, so all of it is unit-testable.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forge::serve::http {

struct Limits {
    std::size_t max_request_line = 8 * 1024;
    std::size_t max_header_bytes = 16 * 1024;  // the whole head, request line included (and chunked trailers)
    std::size_t max_headers = 64;
    std::size_t max_body = 1024 * 1024;  // decoded
    // Everything one request sends: head, chunk-size lines and extensions, trailers, body. Without it a
    // body of 1-byte chunks each carrying a long extension costs a thousand bytes per body byte.
    // 0: twice max_body plus max_header_bytes, room for any reasonable chunking of the largest body.
    std::size_t max_request_bytes = 0;

    std::size_t request_bytes() const { return max_request_bytes ? max_request_bytes : 2 * max_body + max_header_bytes; }
};

struct Request {
    std::string method;
    std::string target;
    int minor_version = 1;                                     // HTTP/1.<minor>
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in arrival order
    std::string body;
    bool keep_alive = true;

    // The first header called `name` (lower case), or nullptr.
    const std::string* header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (k == name) return &v;
        return nullptr;
    }
    // The target without its query string.
    std::string_view path() const { return std::string_view(target).substr(0, target.find('?')); }
};

// Why a request was refused: the status to answer with (the connection is closed after it).
struct Failure {
    int status = 400;
    std::string message;
};

inline std::string_view reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Content Too Large";
        case 417: return "Expectation Failed";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

namespace detail {

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}
// RFC 9110 token characters (method and header names).
inline bool is_tchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}
// Each comma-separated element of a header value, trimmed.
template <class F>
void for_each_element(std::string_view v, F&& f) {
    for (;;) {
        const auto comma = v.find(',');
        f(trim_ows(v.substr(0, comma)));
        if (comma == std::string_view::npos) return;
        v.remove_prefix(comma + 1);
    }
}

}  // namespace detail

// Feed it bytes as they arrive, then call next() until it stops returning `complete`. After an error the
// connection cannot be resynchronised: answer with failure().status and close it.
class RequestParser {
public:
    enum class State { incomplete, complete, error };

    explicit RequestParser(Limits limits = {}) : limits_(limits) {}

    void feed(std::string_view bytes) { buf_.append(bytes); }

    // Parses the next request from what was fed. `complete` fills `out` and keeps any bytes after it
    // (a pipelined request) for the next call.
    State next(Request& out) {
        if (state_ == State::error) return state_;
        if ((phase_ == Phase::head && !parse_head()) || (phase_ == Phase::length_body && !read_length_body()) ||
            (phase_ == Phase::chunked_body && !read_chunked_body())) {
            if (state_ == State::incomplete && phase_ != Phase::head) {  // a head is kept whole until it ends
                consumed_ += pos_;
                buf_.erase(0, pos_);
                pos_ = 0;
            }
            return state_;
        }
        buf_.erase(0, pos_);
        pos_ = 0;
        consumed_ = 0;
        scanned_ = 0;
        phase_ = Phase::head;
        continue_sent_ = false;
        out = std::move(req_);
        req_ = Request{};
        return State::complete;
    }

    const Failure& failure() const { return failure_; }
    // True once per request whose client sent `Expect: 100-continue` and now waits for a go-ahead to
    // send its body.
    bool take_continue() {
        if (phase_ == Phase::head || continue_sent_ || !expects_continue_) return false;
        if (phase_ == Phase::length_body && body_left_ == 0) return false;
        continue_sent_ = true;
        return true;
    }
    // Nothing of a next request has arrived (an idle keep-alive connection).
    bool idle() const { return phase_ == Phase::head && buf_.size() == pos_; }
    // Bytes held for the request being parsed: unparsed input and the decoded body so far.
    std::size_t buffered_bytes() const { return buf_.size() + req_.body.size(); }

private:
    enum class Phase { head, length_body, chunked_body };
    enum class ChunkStep { size_line, data, data_crlf, trailers };

    bool fail(int status, std::string message) {
        failure_ = {status, std::move(message)};
        state_ = State::error;
        return false;
    }
    bool need_more() {
        state_ = State::incomplete;
        return false;
    }
    // Checked whenever the parse moves on, so the verdict falls at the same byte however the input was split.
    bool within_request_bytes() {
        return consumed_ + pos_ <= limits_.request_bytes() ||
               fail(413, "request larger than " + std::to_string(limits_.request_bytes()) + " bytes as sent (head, chunk framing and body)");
    }

    bool parse_head() {
        // Blank lines before a request are allowed (RFC 9112 2.2); dropped at once so they cannot pile up.
        std::size_t blank = pos_;
        while (buf_.compare(blank, 2, "\r\n") == 0) blank += 2;
        if (blank > pos_) {
            buf_.erase(pos_, blank - pos_);
            scanned_ = 0;
        }
        const std::string_view rest = std::string_view(buf_).substr(pos_);
        const std::size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
        const std::size_t end = rest.find("\r\n\r\n", from);
        if (end == std::string_view::npos) {
            // Lines end in CRLF; a bare LF is refused now rather than waited on until a limit trips.
            for (std::size_t lf = rest.find('\n', from); lf != std::string_view::npos; lf = rest.find('\n', lf + 1))
                if (lf == 0 || rest[lf - 1] != '\r') return fail(400, "bare LF in request head");
            scanned_ = rest.size();
            // Judged as soon as it can be, so the verdict does not depend on how the bytes were split.
            std::size_t line_end = rest.find("\r\n");
            if (line_end == std::string_view::npos) line_end = rest.size() - (rest.ends_with('\r') ? 1 : 0);
            if (line_end > limits_.max_request_line)
                return fail(414, "request line longer than " + std::to_string(limits_.max_request_line) + " bytes");
            if (rest.size() > limits_.max_header_bytes)
                return fail(431, "request head larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
            return need_more();
        }
        if (end + 4 > limits_.max_header_bytes)
            return fail(431, "request head larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
        const std::string_view head = rest.substr(0, end + 2);  // each line keeps its CRLF
        pos_ += end + 4;

        std::size_t line_end = head.find("\r\n");
        if (line_end > limits_.max_request_line)
            return fail(414, "request line longer than " + std::to_string(limits_.max_request_line) + " bytes");
        if (!parse_request_line(head.substr(0, line_end))) return false;
        for (std::size_t at = line_end + 2; at < head.size(); at = line_end + 2) {
            line_end = head.find("\r\n", at);
            if (req_.headers.size() == limits_.max_headers)
                return fail(431, "more than " + std::to_string(limits_.max_headers) + " header fields");
            if (!parse_header_line(head.substr(at, line_end - at), req_.headers)) return false;
        }
        return choose_framing();
    }

    bool parse_request_line(std::string_view line) {
        const auto sp1 = line.find(' ');
        const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
            return fail(400, "malformed request line");
        const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                               version = line.substr(sp2 + 1);
        if (method.empty() || !std::all_of(method.begin(), method.end(), detail::is_tchar))
            return fail(400, "malformed method in request line");
        if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
            return fail(400, "malformed request target");
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' || version[5] > '9' ||
            version[7] < '0' || version[7] > '9')
            return fail(400, "malformed HTTP version");
        if (version[5] != '1') return fail(505, "only HTTP/1.x is supported");
        req_.method = method;
        req_.target = target;
        req_.minor_version = version[7] - '0';
        return true;
    }

    bool parse_header_line(std::string_view line, std::vector<std::pair<std::string, std::string>>& into) {
        if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) return fail(400, "obsolete header line folding");
        const auto colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos) return fail(400, "malformed header line");
        const std::string_view name = line.substr(0, colon), value = detail::trim_ows(line.substr(colon + 1));
        if (!std::all_of(name.begin(), name.end(), detail::is_tchar)) return fail(400, "malformed header name");
        // Visible characters, spaces, tabs and obs-text; no other control characters (no bare CR or LF).
        if (!std::all_of(value.begin(), value.end(), [](char c) { return c == '\t' || static_cast<unsigned char>(c) >= 0x20; }) ||
            value.find('\x7f') != std::string_view::npos)
            return fail(400, "control character in header '" + std::string(name) + "'");
        std::string lname(name);
        std::transform(lname.begin(), lname.end(), lname.begin(), detail::lower);
        into.emplace_back(std::move(lname), std::string(value));
        return true;
    }

    bool choose_framing() {
        bool close = false, keep = false, chunked = false, has_te = false, has_length = false;
        expects_continue_ = false;
        std::uint64_t length = 0;
        for (const auto& [name, value] : req_.headers) {
            if (name == "connection") {
                detail::for_each_element(value, [&](std::string_view e) {
                    close |= detail::iequals(e, "close");
                    keep |= detail::iequals(e, "keep-alive");
                });
            } else if (name == "transfer-encoding") {
                // Only "chunked", and only once: anything else could be read differently by a proxy.
                if (has_te || !detail::iequals(value, "chunked")) return fail(501, "unsupported Transfer-Encoding '" + value + "'");
                has_te = chunked = true;
            } else if (name == "content-length") {
                if (value.empty() || value.size() > 15 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
                    return fail(400, "malformed Content-Length");
                const std::uint64_t n = std::stoull(value);
                if (has_length && n != length) return fail(400, "conflicting Content-Length headers");
                has_length = true;
                length = n;
            } else if (name == "expect") {
                if (!detail::iequals(value, "100-continue")) return fail(417, "unsupported Expect '" + value + "'");
                expects_continue_ = true;
            }
        }
        req_.keep_alive = req_.minor_version >= 1 ? !close : keep && !close;
        if (has_te && has_length) return fail(400, "both Transfer-Encoding and Content-Length");
        if (chunked) {
            if (req_.minor_version == 0) return fail(400, "chunked Transfer-Encoding in an HTTP/1.0 request");
            phase_ = Phase::chunked_body;
            chunk_step_ = ChunkStep::size_line;
            return true;
        }
        if (length > limits_.max_body) return fail(413, "request body larger than " + std::to_string(limits_.max_body) + " bytes");
        body_left_ = std::size_t(length);
        phase_ = Phase::length_body;
        return true;
    }

    bool read_length_body() {
        const std::size_t take = std::min(body_left_, buf_.size() - pos_);
        req_.body.append(buf_, pos_, take);
        pos_ += take;
        body_left_ -= take;
        if (!within_request_bytes()) return false;
        return body_left_ == 0 || need_more();
    }

    bool read_chunked_body() {
        constexpr std::size_t kMaxSizeLine = 1024;  // hex digits and chunk extensions
        for (;;) {
            const std::string_view rest = std::string_view(buf_).substr(pos_);
            switch (chunk_step_) {
                case ChunkStep::size_line: {
                    const auto eol = rest.find("\r\n");
                    if (eol == std::string_view::npos)  // a trailing CR may be the end of the line
                        return rest.size() - (rest.ends_with('\r') ? 1 : 0) > kMaxSizeLine ? fail(400, "chunk-size line too long") : need_more();
                    if (eol > kMaxSizeLine) return fail(400, "chunk-size line too long");
                    const std::string_view line = rest.substr(0, eol);
                    std::size_t digits = 0;
                    std::uint64_t size = 0;
                    for (; digits < line.size(); ++digits) {
                        const char c = detail::lower(line[digits]);
                        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                        if (d < 0) break;
                        if (size > (limits_.max_body >> 4) + 1) return fail(413, "request body larger than " + std::to_string(limits_.max_body) + " bytes");
                        size = size * 16 + std::uint64_t(d);
                    }
                    const std::string_view ext = line.substr(digits);
                    const std::size_t semicolon = ext.find_first_not_of(" \t");  // whitespace may precede ';'
                    if (digits == 0 || (semicolon != std::string_view::npos && ext[semicolon] != ';'))
                        return fail(400, "malformed chunk size");
                    if (!std::all_of(ext.begin(), ext.end(), [](char c) { return c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f); }))
                        return fail(400, "control character in chunk extension");
                    if (size > limits_.max_body - req_.body.size())
                        return fail(413, "request body larger than " + std::to_string(limits_.max_body) + " bytes");
                    pos_ += eol + 2;
                    if (!within_request_bytes()) return false;
                    body_left_ = std::size_t(size);
                    chunk_step_ = size == 0 ? ChunkStep::trailers : ChunkStep::data;
                    trailer_bytes_ = 0;
                    break;
                }
                case ChunkStep::data:
                    if (!read_length_body()) return false;
                    chunk_step_ = ChunkStep::data_crlf;
                    break;
                case ChunkStep::data_crlf:
                    if (rest.size() < 2) return need_more();
                    if (rest.substr(0, 2) != "\r\n") return fail(400, "chunk data not followed by CRLF");
                    pos_ += 2;
                    if (!within_request_bytes()) return false;
                    chunk_step_ = ChunkStep::size_line;
                    break;
                case ChunkStep::trailers: {
                    // Trailer fields are read for their syntax and size, then dropped.
                    const auto eol = rest.find("\r\n");
                    if (eol == std::string_view::npos)
                        return trailer_bytes_ + rest.size() > limits_.max_header_bytes ? fail(431, "chunked trailers too large") : need_more();
                    trailer_bytes_ += eol + 2;
                    if (trailer_bytes_ > limits_.max_header_bytes) return fail(431, "chunked trailers too large");
                    pos_ += eol + 2;
                    if (!within_request_bytes()) return false;
                    if (eol == 0) return true;
                    std::vector<std::pair<std::string, std::string>> dropped;
                    if (!parse_header_line(rest.substr(0, eol), dropped)) return false;
                    break;
                }
            }
        }
    }

    Limits limits_;
    std::string buf_;
    std::size_t pos_ = 0;       // start of the unparsed bytes in buf_
    std::size_t consumed_ = 0;  // bytes of the current request parsed and dropped from buf_
    std::size_t scanned_ = 0;   // bytes of an unfinished head already searched for its end
    Phase phase_ = Phase::head;
    ChunkStep chunk_step_ = ChunkStep::size_line;
    std::size_t body_left_ = 0;
    std::size_t trailer_bytes_ = 0;
    bool expects_continue_ = false, continue_sent_ = false;
    State state_ = State::incomplete;
    Request req_;
    Failure failure_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A complete response with a Content-Length body (a 204 has neither).
inline std::string response(int status, std::string_view content_type, std::string_view body, bool keep_alive, const Headers& extra = {}) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
    if (!content_type.empty()) out += "Content-Type: " + std::string(content_type) + "\r\n";
    if (status != 204) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

// The head of a Server-Sent Events response; its body is sent as chunks (so the connection can be kept).
inline std::string sse_head(bool keep_alive, const Headers& extra = {}) {
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
    return out + "\r\n";
}

// One chunk of a chunked body (never empty: an empty chunk would end the body).
inline std::string chunk(std::string_view data) {
    if (data.empty()) return {};
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out(size, std::size_t(n));
    out += data;
    out += "\r\n";
    return out;
}

inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// One SSE event carrying `data` (one line: JSON text has no raw newlines), as a chunk.
inline std::string sse_event(std::string_view data) { return chunk("data: " + std::string(data) + "\n\n"); }

}  // namespace forge::serve::http
