#pragma once
// The server's sockets: an accept loop and one thread per connection (capped), so a slow or silent
// client only ever holds up itself. Every wait is bounded: a request must arrive within the read
// timeout once begun, an idle keep-alive connection is closed after the idle timeout, and a send that
// cannot progress for the write timeout ends the connection. stop() is graceful but bounded: no new
// connections, idle ones close, queued requests get 503, running generations go on until the shutdown
// deadline, and whatever connection is still open a grace period later is shut down.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "forge/core/error.hpp"
#include "forge/serve/http.hpp"
#include "forge/serve/openai.hpp"

namespace forge::serve {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: any free port (see Server::port())
    http::Limits limits{};
    std::chrono::milliseconds read_timeout{10'000};  // for the rest of a request once its first byte came
    std::chrono::milliseconds idle_timeout{30'000};  // between requests on a keep-alive connection
    std::chrono::milliseconds write_timeout{10'000};
    // After stop(): how long running generations may go on before they are cut short (their replies say
    // so). Connections still open kShutdownGrace after that are closed.
    std::chrono::milliseconds shutdown_timeout{5'000};
    int max_connections = 64;
};

inline constexpr std::chrono::milliseconds kShutdownGrace{1'000};

namespace detail {

// A file descriptor closed on destruction.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

inline std::string errno_text() { return std::strerror(errno); }

// One client connection: reads requests, hands them to the API, writes what it answers.
class Connection final : public Responder {
public:
    Connection(Fd fd, int stop_fd, const ServerOptions& opt) : fd_(std::move(fd)), stop_fd_(stop_fd), opt_(opt), parser_(opt.limits) {
        const int one = 1;
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // tokens go out as they come
        const auto ms = opt.write_timeout.count();
        const timeval tv{.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }

    void serve(Api& api) {
        http::Request req;
        for (;;) {
            const auto state = read_request(req);
            if (!state) return;  // peer closed, timed out idle, or the server is stopping
            if (*state == http::RequestParser::State::error) {
                const auto& f = parser_.failure();
                send(Api::error_response({f.status, f.message}, false));
                return linger_close();
            }
            if (!api.handle(req, *this)) return;
        }
    }

    bool send(std::string_view bytes) override {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;  // includes SO_SNDTIMEO expiring: the client stopped reading
            bytes.remove_prefix(std::size_t(n));
        }
        return true;
    }

    bool hung_up() override {
        pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) <= 0) return false;
        if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
        char c;
        return ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }

private:
    // The next request, or nullopt when the connection should just close. A timeout in the middle of a
    // request is answered with 408 first.
    std::optional<http::RequestParser::State> read_request(http::Request& req) {
        using clock = std::chrono::steady_clock;
        auto deadline = clock::now() + opt_.idle_timeout;
        bool started = !parser_.idle();
        if (started) deadline = clock::now() + opt_.read_timeout;
        for (;;) {
            const auto state = parser_.next(req);
            if (state != http::RequestParser::State::incomplete) return state;
            if (parser_.take_continue() && !send("HTTP/1.1 100 Continue\r\n\r\n")) return std::nullopt;
            if (!started && !parser_.idle()) {
                started = true;
                deadline = clock::now() + opt_.read_timeout;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            // While idle the stop signal is watched too; a request already begun may still finish.
            pollfd p[2] = {{fd_.get(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
            const int ready = left > 0 ? ::poll(p, started ? 1 : 2, int(std::min<long long>(left, 1 << 30))) : 0;
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) {
                if (started) send(Api::error_response({408, "the request did not arrive in time"}, false));
                return std::nullopt;
            }
            if (!started && (p[1].revents & POLLIN)) return std::nullopt;
            if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[16 * 1024];
            const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            parser_.feed(std::string_view(buf, std::size_t(n)));
        }
    }

    // Closing with unread request bytes in the socket would reset the connection and could destroy the
    // error response before the client reads it; so stop sending, then drain briefly (bounded) first.
    void linger_close() {
        ::shutdown(fd_.get(), SHUT_WR);
        constexpr std::size_t kMaxDrain = 4 * 1024 * 1024;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        char buf[16 * 1024];
        for (std::size_t drained = 0; drained < kMaxDrain;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
            pollfd p{fd_.get(), POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, int(left)) <= 0) return;
            const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n <= 0) return;
            drained += std::size_t(n);
        }
    }

    Fd fd_;
    int stop_fd_;
    const ServerOptions& opt_;
    http::RequestParser parser_;
};

}  // namespace detail

class Server {
public:
    // Binds and listens (a forge::Error if it cannot); serving starts with run().
    Server(Api& api, ServerOptions opt) : api_(api), opt_(std::move(opt)) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw Error("pipe: " + detail::errno_text());
        stop_read_ = detail::Fd(p[0]);
        stop_write_ = detail::Fd(p[1]);

        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        const std::string port = std::to_string(opt_.port);
        if (const int rc = ::getaddrinfo(opt_.host.c_str(), port.c_str(), &hints, &found); rc != 0)
            throw Error("cannot resolve host '" + opt_.host + "': " + ::gai_strerror(rc));
        std::string why = "no address";
        for (const addrinfo* a = found; a && listen_.get() < 0; a = a->ai_next) {
            detail::Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
            const int one = 1;
            if (s.get() < 0 || ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
                ::bind(s.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(s.get(), 128) != 0) {
                why = detail::errno_text();
                continue;
            }
            listen_ = std::move(s);
        }
        ::freeaddrinfo(found);
        if (listen_.get() < 0) throw Error("cannot listen on " + opt_.host + ":" + port + ": " + why);
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() {
        stop();
        join_all();
    }

    // The port listened on (the one chosen when asked for port 0).
    int port() const {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
        return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port : reinterpret_cast<sockaddr_in&>(ss).sin_port);
    }

    // Accepts and serves connections until stop(); returns when every connection has ended.
    void run() {
        while (!stopping_) {
            pollfd p[2] = {{listen_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
            if (::poll(p, 2, -1) < 0 || !(p[0].revents & POLLIN)) continue;
            detail::Fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (fd.get() < 0) {
                if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let some close
                continue;
            }
            reap();
            if (active_ >= opt_.max_connections) {
                const std::string busy = Api::error_response({503, "too many connections: try again later", "server_error", {}, "server_busy"}, false);
                ::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            std::lock_guard lock(mu_);
            auto& w = workers_.emplace_back();
            try {
                w.fd = fd.get();
                w.thread = std::thread([this, &w, fd = std::move(fd)]() mutable {
                    {
                        detail::Connection connection(std::move(fd), stop_read_.get(), opt_);
                        try {
                            connection.serve(api_);
                        } catch (const std::exception&) {
                            // A connection's failure (say, out of memory for one request) ends that connection only.
                        }
                        std::lock_guard lock(w.mu);
                        w.fd = -1;  // closed as `connection` goes: no longer for abort_connections() to shut down
                    }
                    w.done = true;
                });
                ++active_;
            } catch (const std::system_error&) {
                workers_.pop_back();  // no thread to be had: the socket closed with the lambda
            }
        }
        listen_.reset();
        // Generations stop at the shutdown deadline; a connection still open a grace period later (a
        // client reading its reply slowly, a request half sent) is shut down so the server can exit.
        const auto give_up = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(stop_at_.load())) +
                             opt_.shutdown_timeout + kShutdownGrace;
        while (std::chrono::steady_clock::now() < give_up && !all_done()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        abort_connections();
        join_all();
    }

    // Thread-safe and idempotent. run() returns once every connection has ended: within
    // shutdown_timeout + kShutdownGrace (and the token being computed then).
    void stop() {
        if (stopping_.exchange(true)) return;
        stop_at_ = std::chrono::steady_clock::now().time_since_epoch().count();
        api_.stop(opt_.shutdown_timeout);
        const char c = 0;
        [[maybe_unused]] const auto n = ::write(stop_write_.get(), &c, 1);  // the byte stays: every poller sees it
    }

private:
    struct Worker {
        std::thread thread;
        std::atomic<bool> done{false};
        std::mutex mu;
        int fd = -1;  // the connection's socket while it is open (guarded by mu)
    };

    bool all_done() {
        std::lock_guard lock(mu_);
        return std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.done.load(); });
    }

    // Wakes every connection's blocked read or write with an error, so its thread ends.
    void abort_connections() {
        std::lock_guard lock(mu_);
        for (auto& w : workers_) {
            std::lock_guard wl(w.mu);
            if (w.fd >= 0) ::shutdown(w.fd, SHUT_RDWR);
        }
    }

    // Joins connections that have ended.
    void reap() {
        std::lock_guard lock(mu_);
        for (auto it = workers_.begin(); it != workers_.end();) {
            if (!it->done) {
                ++it;
                continue;
            }
            it->thread.join();
            it = workers_.erase(it);
            --active_;
        }
    }

    void join_all() {
        std::lock_guard lock(mu_);
        for (auto& w : workers_)
            if (w.thread.joinable()) w.thread.join();
        workers_.clear();
        active_ = 0;
    }

    Api& api_;
    ServerOptions opt_;
    detail::Fd listen_, stop_read_, stop_write_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::chrono::steady_clock::rep> stop_at_{0};
    std::mutex mu_;
    std::list<Worker> workers_;
    int active_ = 0;
};

}  // namespace forge::serve
