#pragma once
// A raw-socket HTTP/1.1 client for server tests: it sends exactly the bytes a test gives it and reads
// responses (Content-Length or chunked) and Server-Sent Events one at a time, every read bounded by a
// deadline so a broken server fails the test instead of hanging it. Loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace forge::test {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};

inline std::string post(std::string_view path, std::string_view body, std::string_view extra_headers = "") {
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + std::string(extra_headers) + "\r\n" + std::string(body);
}
inline std::string get(std::string_view path, std::string_view extra_headers = "") {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra_headers) + "\r\n";
}

class TestClient {
public:
    using clock = std::chrono::steady_clock;

    explicit TestClient(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20)) : timeout_(timeout) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(std::uint16_t(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;
    ~TestClient() { close(); }

    void send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) throw std::runtime_error("send failed");
            bytes.remove_prefix(std::size_t(n));
        }
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    // A whole response.
    HttpResponse response() {
        HttpResponse r = head();
        if (chunked_) {
            while (auto c = next_chunk()) r.body += *c;
        } else {
            r.body = take(body_length_);
        }
        return r;
    }

    // A response's status and headers; its body is then read with next_chunk() or next_event().
    HttpResponse head() {
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos) fill();
        const std::string head = take(end + 4);
        HttpResponse r;
        r.status = std::stoi(head.substr(9, 3));
        for (std::size_t at = head.find("\r\n") + 2; at < end;) {
            const std::size_t eol = head.find("\r\n", at);
            const std::string line = head.substr(at, eol - at);
            const std::size_t colon = line.find(':');
            std::string name = line.substr(0, colon);
            for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
            r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
            at = eol + 2;
        }
        chunked_ = r.headers.count("transfer-encoding") != 0;
        body_length_ = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
        events_.clear();
        return r;
    }

    // The next chunk of a chunked body; nullopt after the last.
    std::optional<std::string> next_chunk() {
        std::size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos) fill();
        const std::size_t size = std::stoul(take(eol + 2), nullptr, 16);
        while (buf_.size() < size + 2) fill();
        std::string data = take(size + 2);
        data.resize(size);
        if (size == 0) return std::nullopt;
        return data;
    }

    // The data of the next Server-Sent Event; nullopt when the body ends.
    std::optional<std::string> next_event() {
        std::size_t end;
        while ((end = events_.find("\n\n")) == std::string::npos) {
            const auto c = next_chunk();
            if (!c) return std::nullopt;
            events_ += *c;
        }
        std::string event = events_.substr(0, end);
        events_.erase(0, end + 2);
        if (event.rfind("data: ", 0) != 0) throw std::runtime_error("not an SSE data line: " + event);
        return event.substr(6);
    }

    // True when the server closed the connection (EOF) within the timeout.
    bool closed_by_server() {
        try {
            for (;;) fill();
        } catch (const std::runtime_error& e) {
            return std::string_view(e.what()) == "connection closed";
        }
    }

private:
    void fill() {
        const auto deadline = clock::now() + timeout_;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            pollfd p{fd_, POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, int(left)) == 0) throw std::runtime_error("timed out waiting for the server");
            char b[8192];
            const ssize_t n = ::recv(fd_, b, sizeof b, 0);
            if (n == 0) throw std::runtime_error("connection closed");
            if (n < 0) throw std::runtime_error("recv failed");
            buf_.append(b, std::size_t(n));
            return;
        }
    }
    std::string take(std::size_t n) {
        while (buf_.size() < n) fill();
        std::string out = buf_.substr(0, n);
        buf_.erase(0, n);
        return out;
    }

    int fd_ = -1;
    std::chrono::milliseconds timeout_;
    std::string buf_, events_;
    bool chunked_ = false;
    std::size_t body_length_ = 0;
};

}  // namespace forge::test
