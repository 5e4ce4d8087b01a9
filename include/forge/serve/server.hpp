#pragma once
// The server: a listening socket served by an event loop (event_loop.hpp, where ServerOptions is), so an
// open connection costs a socket and a little memory, not a thread, and a slow or silent client only
// ever holds up itself. Every wait is bounded: a request must arrive within the read timeout once begun,
// an idle keep-alive connection is closed after the idle timeout, and a send that cannot progress for the
// write timeout ends the connection. stop() is graceful but bounded: no new connections, idle ones close,
// queued requests get 503, running generations go on until the shutdown deadline, and whatever connection
// is still open a grace period later is shut down.
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "forge/core/error.hpp"
#include "forge/serve/event_loop.hpp"
#include "forge/serve/openai.hpp"

namespace forge::serve {

// Descriptors the connection cap leaves to the rest of the process: the listening socket, the event loop's
// own, the model's files, stdio, and the one a connection refused with 503 is accepted on.
inline constexpr int kReservedFds = 64;

namespace detail {

// Raises the soft open-file limit to the hard one, as nginx does (the usual soft default of 1024 would
// hold the server near a thousand connections for no reason), and returns `wanted` lowered to what fits
// under it.
inline int connection_cap(int wanted) {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return wanted;
    if (r.rlim_cur != r.rlim_max) {
        const rlimit raised{r.rlim_max, r.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;  // an unlimited hard limit cannot be the soft one: kept as it was
    }
    if (r.rlim_cur == RLIM_INFINITY) return wanted;
    const rlim_t room = r.rlim_cur > rlim_t(kReservedFds) ? r.rlim_cur - rlim_t(kReservedFds) : 1;
    return int(std::min(rlim_t(wanted), room));
}

inline Fd listen_on(const std::string& host, int port_number) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(port_number);
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw Error("cannot resolve host '" + host + "': " + ::gai_strerror(rc));
    Fd listening;
    std::string why = "no address";
    for (const addrinfo* a = found; a && listening.get() < 0; a = a->ai_next) {
        Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
        const int one = 1;
        // SOMAXCONN: thousands of clients may connect at once, and a full backlog drops their SYNs.
        if (s.get() < 0 || ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            ::bind(s.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(s.get(), SOMAXCONN) != 0) {
            why = errno_text();
            continue;
        }
        listening = std::move(s);
    }
    ::freeaddrinfo(found);
    if (listening.get() < 0) throw Error("cannot listen on " + host + ":" + port + ": " + why);
    return listening;
}

inline int port_of(const Fd& s) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port : reinterpret_cast<sockaddr_in&>(ss).sin_port);
}

}  // namespace detail

class Server {
public:
    // Binds and listens (a forge::Error if it cannot); serving starts with run(). Raises the process's
    // soft open-file limit to its hard limit (see max_connections()).
    Server(Api& api, ServerOptions opt) : api_(api), opt_(std::move(opt)) {
        if (opt_.max_connections < 1) throw Error("ServerOptions::max_connections must be at least 1");
        if (opt_.max_handlers < 1) throw Error("ServerOptions::max_handlers must be at least 1");
        detail::Fd listening = detail::listen_on(opt_.host, opt_.port);
        port_ = detail::port_of(listening);
        max_connections_ = detail::connection_cap(opt_.max_connections);
        loop_ = std::make_unique<detail::EventLoop>(api_, opt_, std::move(listening), max_connections_);
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() { stop(); }

    // The port listened on (the one chosen when asked for port 0).
    int port() const { return port_; }
    // The cap on open connections: ServerOptions::max_connections, lowered when the open-file limit (raised
    // to its hard limit) has room for fewer, less kReservedFds.
    int max_connections() const { return max_connections_; }

    // Accepts and serves connections until stop(); returns when every connection has ended.
    void run() { loop_->run(); }

    // Thread-safe and idempotent. run() returns once every connection has ended: within
    // shutdown_timeout + kShutdownGrace (and the token being computed then).
    void stop() {
        if (stopping_.exchange(true)) return;
        api_.stop(opt_.shutdown_timeout);
        loop_->stop();
    }

private:
    Api& api_;
    ServerOptions opt_;
    int port_ = 0, max_connections_ = 0;
    std::atomic<bool> stopping_{false};
    std::unique_ptr<detail::EventLoop> loop_;
};

}  // namespace forge::serve
