#pragma once
// The server's connections: one thread waits on every socket with epoll (accepting, reading and parsing
// requests, timing out the slow and the idle), and a bounded pool of handler threads answers complete
// requests through the API. An open connection costs a socket and its parser's bytes, not a thread, so
// thousands of slow or idle clients cannot keep the rest from being served; only answering takes a thread.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

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
    int max_connections = 4096;  // open at once; lowered to what the open-file limit allows (Server::max_connections())
    int max_handlers = 64;       // requests answered at once; more wait for a handler in arrival order
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

// One client connection and its states. The event loop drives it between requests (reading one, or
// sending an error reply and draining before the close); while a handler thread answers a request the
// loop leaves it alone, and the handler writes through Responder, blocking up to the write timeout.
class Connection final : public Responder {
public:
    using clock = std::chrono::steady_clock;
    enum class Next { wait, handle, close };  // what the loop is to do after an event

    Connection(Fd fd, const ServerOptions& opt, clock::time_point now)
        : fd_(std::move(fd)), opt_(opt), parser_(opt.limits), deadline_(now + opt.idle_timeout) {
        const int one = 1;
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // tokens go out as they come
    }

    int fd() const { return fd_.get(); }
    // The request to answer, once the loop returned Next::handle.
    const http::Request& request() const { return request_; }
    bool handled() const { return state_ == State::handled; }
    // Between requests: what stop() closes at once (one in the middle of a request may finish it).
    bool idle() const { return state_ == State::reading && !started_; }

    // The epoll events it waits for now (none while a handler has it) and when it stops waiting.
    std::uint32_t events() const {
        switch (state_) {
            case State::reading: return EPOLLIN | (out_.empty() ? 0u : std::uint32_t(EPOLLOUT));
            case State::replying: return EPOLLOUT;
            case State::draining: return EPOLLIN;
            case State::handled: break;
        }
        return 0;
    }
    std::optional<clock::time_point> deadline() const { return handled() ? std::nullopt : std::optional(deadline_); }

    Next on_readable(clock::time_point now) {
        if (state_ != State::reading && state_ != State::draining) return Next::wait;
        // A few reads per wake-up, so one fast sender cannot starve the rest; what is left stays readable.
        for (int i = 0; i < kReadsPerWakeup; ++i) {
            char buf[16 * 1024];
            const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Next::wait;
            if (n <= 0) return Next::close;  // the peer left; a request it had not finished is moot
            if (state_ == State::draining) {
                if ((drained_ += std::size_t(n)) >= kMaxDrain) return Next::close;
                continue;
            }
            parser_.feed(std::string_view(buf, std::size_t(n)));
            // Parsed at once: a whole request stops the reading, and the bytes after it wait in the socket.
            if (const Next next = parse(now); next != Next::wait || state_ != State::reading) return next;
        }
        return Next::wait;
    }

    Next on_writable(clock::time_point now) {
        if (!flush()) return Next::close;
        if (state_ != State::replying || !out_.empty()) return Next::wait;
        // Closing with unread request bytes in the socket would reset the connection and could destroy the
        // reply before the client reads it; so stop sending, then drain briefly (bounded) first.
        ::shutdown(fd_.get(), SHUT_WR);
        state_ = State::draining;
        deadline_ = now + kDrainTime;
        return Next::wait;
    }

    Next on_deadline(clock::time_point now) {
        if (state_ == State::reading && started_) return reply_and_close(Api::error_response({408, "the request did not arrive in time"}, false), now);
        return Next::close;  // idle too long, or an error reply or drain that did not finish in time
    }

    // Back from a handler that keeps the connection: the next request may already be buffered whole.
    Next resume(bool stopping, clock::time_point now) {
        request_ = {};  // an idle connection should not hold on to the last request's body
        state_ = State::reading;
        started_ = false;
        deadline_ = now + opt_.idle_timeout;
        const Next next = parse(now);
        return next == Next::wait && stopping && idle() ? Next::close : next;
    }

    // Handler side. A 100 Continue the loop could not finish sending goes first.
    bool send(std::string_view bytes) override {
        if (!out_.empty() && !send_within_timeout(std::exchange(out_, {}))) return false;
        return send_within_timeout(bytes);
    }

    bool hung_up() override {
        pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) <= 0) return false;
        if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
        char c;
        return ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
    }

private:
    enum class State { reading, handled, replying, draining };
    static constexpr int kReadsPerWakeup = 4;
    static constexpr std::size_t kMaxDrain = 4 * 1024 * 1024;
    static constexpr std::chrono::seconds kDrainTime{1};

    Next parse(clock::time_point now) {
        switch (parser_.next(request_)) {
            case http::RequestParser::State::complete: state_ = State::handled; return Next::handle;
            case http::RequestParser::State::error: {
                const auto& f = parser_.failure();
                return reply_and_close(Api::error_response({f.status, f.message}, false), now);
            }
            case http::RequestParser::State::incomplete: break;
        }
        if (!started_ && !parser_.idle()) {
            started_ = true;
            deadline_ = now + opt_.read_timeout;
        }
        if (parser_.take_continue()) out_ += "HTTP/1.1 100 Continue\r\n\r\n";
        return flush() ? Next::wait : Next::close;
    }

    Next reply_and_close(std::string_view reply, clock::time_point now) {
        out_ += reply;
        state_ = State::replying;
        deadline_ = now + opt_.write_timeout;
        return on_writable(now);
    }

    // Sends what the socket takes without waiting; false when the client is gone.
    bool send_now(std::string_view& bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n > 0) {
                bytes.remove_prefix(std::size_t(n));
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return true;
            } else if (!(n < 0 && errno == EINTR)) {
                return false;
            }
        }
        return true;
    }

    bool flush() {
        std::string_view rest(out_);
        const bool ok = send_now(rest);
        out_.erase(0, out_.size() - rest.size());
        return ok;
    }

    // Waits while the socket is full; gives up when nothing could be sent for the write timeout (the
    // client stopped reading) or the socket was shut down.
    bool send_within_timeout(std::string_view bytes) {
        const int ms = int(std::min<long long>(opt_.write_timeout.count(), INT_MAX));
        while (send_now(bytes)) {
            if (bytes.empty()) return true;
            pollfd p{fd_.get(), POLLOUT, 0};
            const int ready = ::poll(&p, 1, ms);
            if (ready == 0 || (ready < 0 && errno != EINTR)) return false;
        }
        return false;
    }

    Fd fd_;
    const ServerOptions& opt_;
    http::RequestParser parser_;
    http::Request request_;
    State state_ = State::reading;
    bool started_ = false;  // some of a request has come (the read timeout runs, not the idle one)
    clock::time_point deadline_;
    std::string out_;  // written by the loop: 100 Continue, an error reply
    std::size_t drained_ = 0;
};

// At most `size` jobs run at once, each on a thread of its own; more wait in arrival order. Threads
// start as the load first needs them and stay until join().
class HandlerPool {
public:
    explicit HandlerPool(int size) : size_(size) {}
    HandlerPool(const HandlerPool&) = delete;
    HandlerPool& operator=(const HandlerPool&) = delete;
    ~HandlerPool() { join(); }

    // A std::system_error when no thread at all can be started.
    void submit(std::function<void()> job) {
        std::lock_guard lock(mu_);
        jobs_.push_back(std::move(job));
        // Counted against waiting jobs, not a flag: several jobs may come before one idle thread wakes.
        if (jobs_.size() > std::size_t(idle_) && int(threads_.size()) < size_) {
            try {
                threads_.emplace_back([this] { work(); });
                return;
            } catch (const std::system_error&) {
                if (threads_.empty()) {
                    jobs_.pop_back();
                    throw;
                }
            }
        }
        cv_.notify_one();
    }

    // Runs the jobs left, then ends every thread.
    void join() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

private:
    void work() {
        std::unique_lock lock(mu_);
        for (;;) {
            ++idle_;
            cv_.wait(lock, [&] { return done_ || !jobs_.empty(); });
            --idle_;
            if (jobs_.empty()) return;
            std::function<void()> job = std::move(jobs_.front());
            jobs_.pop_front();
            lock.unlock();
            job();
            lock.lock();
        }
    }

    const int size_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::vector<std::thread> threads_;
    int idle_ = 0;
    bool done_ = false;
};

// The one thread that waits on every socket: it accepts, lets each connection read and parse, enforces
// their deadlines, hands complete requests to the handler pool and takes the connections back after.
// Deadlines sit in an ordered set, so a wake-up finds the expired ones and the next one without
// looking at the rest.
class EventLoop {
public:
    using clock = std::chrono::steady_clock;
    using Next = Connection::Next;

    // `listen` must be a listening socket; the loop owns it from now on.
    EventLoop(Api& api, const ServerOptions& opt, Fd listen, int max_connections)
        : api_(api), opt_(opt), listen_(std::move(listen)), max_connections_(max_connections), epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), pool_(opt.max_handlers) {
        if (epoll_.get() < 0 || wake_.get() < 0) throw Error("cannot create the server's event loop: " + errno_text());
        if (!watch(listen_.get(), kListenId) || !watch(wake_.get(), kWakeId))
            throw Error("cannot watch the server's sockets: " + errno_text());
    }
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Thread-safe. run() stops accepting, closes idle connections and returns once every one has ended.
    void stop() {
        stop_at_ = clock::now().time_since_epoch().count();
        stopping_ = true;
        wake();
    }

    void run() {
        epoll_event events[256];
        for (;;) {
            auto now = clock::now();
            if (stopping_ && !stop_seen_) begin_stop();
            // Generations stop at the shutdown deadline; a connection still open a grace period later (a
            // client reading its reply slowly, a request half sent) is shut down so the server can exit.
            if (stop_seen_ && !aborted_ && now >= give_up_) abort_connections();
            expire(now);
            if (stop_seen_ && connections_.empty()) break;
            if (accept_paused_until_ && now >= *accept_paused_until_) {
                accept_paused_until_.reset();
                watch(listen_.get(), kListenId);
            }
            const int n = ::epoll_wait(epoll_.get(), events, int(std::size(events)), wait_ms(now));
            if (n < 0 && errno != EINTR) throw Error("epoll_wait: " + errno_text());
            now = clock::now();
            for (int i = 0; i < n; ++i) dispatch(events[i], now);
        }
        pool_.join();
    }

private:
    static constexpr std::uint64_t kListenId = 0, kWakeId = 1;  // connections are numbered from 2
    static constexpr int kAcceptsPerWakeup = 64;
    static constexpr std::chrono::milliseconds kAcceptPause{100};

    struct Entry {
        std::unique_ptr<Connection> connection;
        std::uint32_t events = 0;                   // as registered with epoll (0: not registered)
        std::optional<clock::time_point> deadline;  // as filed in deadlines_
    };

    bool watch(int fd, std::uint64_t id) {
        epoll_event ev{.events = EPOLLIN, .data = {.u64 = id}};
        return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    void wake() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = ::write(wake_.get(), &one, sizeof one);
    }

    // Until the nearest deadline, paused accept or shutdown step; -1 when nothing is due.
    int wait_ms(clock::time_point now) const {
        std::optional<clock::time_point> next;
        const auto consider = [&](clock::time_point t) { next = next ? std::min(*next, t) : t; };
        if (!deadlines_.empty()) consider(deadlines_.begin()->first);
        if (accept_paused_until_) consider(*accept_paused_until_);
        if (stop_seen_ && !aborted_) consider(give_up_);
        if (!next) return -1;
        return int(std::clamp<long long>(std::chrono::ceil<std::chrono::milliseconds>(*next - now).count(), 0, INT_MAX));
    }

    void dispatch(const epoll_event& ev, clock::time_point now) {
        const std::uint64_t id = ev.data.u64;
        if (id == kListenId) return accept_connections(now);
        if (id == kWakeId) {
            std::uint64_t count;
            [[maybe_unused]] const auto n = ::read(wake_.get(), &count, sizeof count);
            return take_back(now);
        }
        const auto it = connections_.find(id);
        if (it == connections_.end()) return;
        Connection& c = *it->second.connection;
        Next next = Next::wait;
        if (ev.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) next = c.on_writable(now);
        if (next == Next::wait && (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP))) next = c.on_readable(now);
        settle(id, next);
    }

    // Acts on what a connection asked for, then files its epoll interest and deadline as it now stands.
    void settle(std::uint64_t id, Next next) {
        if (next == Next::close) return close(id);
        Entry& e = connections_.at(id);
        Connection& c = *e.connection;
        if (const std::uint32_t want = c.events(); want != e.events) {
            epoll_event ev{.events = want, .data = {.u64 = id}};
            if (::epoll_ctl(epoll_.get(), e.events == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD, c.fd(), &ev) != 0)
                return close(id);  // out of kernel memory for watches: this connection cannot be served
            e.events = want;
        }
        if (const auto when = c.deadline(); when != e.deadline) {
            if (e.deadline) deadlines_.erase({*e.deadline, id});
            if (when) deadlines_.emplace(*when, id);
            e.deadline = when;
        }
        if (next == Next::handle) hand_off(id, c);
    }

    void hand_off(std::uint64_t id, Connection& c) {
        try {
            pool_.submit([this, id, &c] {
                bool keep = false;
                try {
                    keep = api_.handle(c.request(), c);
                } catch (const std::exception&) {
                    // A request's failure (say, out of memory) ends its connection only.
                }
                {
                    std::lock_guard lock(returned_mu_);
                    returned_.emplace_back(id, keep);
                }
                wake();
            });
        } catch (const std::system_error&) {
            close(id);  // no thread to be had
        }
    }

    // Connections whose handlers are done: kept ones go back to reading, the rest close.
    void take_back(clock::time_point now) {
        std::vector<std::pair<std::uint64_t, bool>> back;
        {
            std::lock_guard lock(returned_mu_);
            back.swap(returned_);
        }
        for (const auto& [id, keep] : back) {
            if (!keep || aborted_) {
                close(id);
                continue;
            }
            settle(id, connections_.at(id).connection->resume(stop_seen_, now));
        }
    }

    void expire(clock::time_point now) {
        while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
            const std::uint64_t id = deadlines_.begin()->second;
            settle(id, connections_.at(id).connection->on_deadline(now));
        }
    }

    void accept_connections(clock::time_point now) {
        // Bounded, so a flood of connects cannot starve the connections already open.
        for (int i = 0; i < kAcceptsPerWakeup; ++i) {
            Fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (fd.get() < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // Still readable, the listening socket would wake the loop again at once: it is left
                    // unwatched for a moment while connections close.
                    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listen_.get(), nullptr);
                    accept_paused_until_ = now + kAcceptPause;
                }
                return;
            }
            if (int(connections_.size()) >= max_connections_) {
                const std::string busy = Api::error_response({503, "too many connections: try again later", "server_error", {}, "server_busy"}, false);
                [[maybe_unused]] const auto n = ::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            const std::uint64_t id = next_id_++;
            connections_.emplace(id, Entry{std::make_unique<Connection>(std::move(fd), opt_, now), 0, std::nullopt});
            settle(id, Next::wait);
        }
    }

    void close(std::uint64_t id) {
        const auto it = connections_.find(id);
        if (it->second.deadline) deadlines_.erase({*it->second.deadline, id});
        connections_.erase(it);  // closing the socket also takes it out of epoll
    }

    // No new connections; idle ones close now, the others when their current request is done.
    void begin_stop() {
        stop_seen_ = true;
        give_up_ = clock::time_point(clock::duration(stop_at_.load())) + opt_.shutdown_timeout + kShutdownGrace;
        listen_.reset();
        accept_paused_until_.reset();  // there is nothing left to resume
        std::vector<std::uint64_t> idle;
        for (const auto& [id, e] : connections_)
            if (e.connection->idle()) idle.push_back(id);
        for (const std::uint64_t id : idle) close(id);
    }

    // Closes what the loop holds and shuts down the sockets handlers hold, so each blocked handler wakes
    // with an error and gives its connection back.
    void abort_connections() {
        aborted_ = true;
        std::vector<std::uint64_t> held;
        for (const auto& [id, e] : connections_) {
            if (e.connection->handled())
                ::shutdown(e.connection->fd(), SHUT_RDWR);
            else
                held.push_back(id);
        }
        for (const std::uint64_t id : held) close(id);
    }

    Api& api_;
    const ServerOptions& opt_;
    Fd listen_;
    const int max_connections_;
    Fd epoll_, wake_;
    std::unordered_map<std::uint64_t, Entry> connections_;
    std::set<std::pair<clock::time_point, std::uint64_t>> deadlines_;
    std::uint64_t next_id_ = 2;
    std::optional<clock::time_point> accept_paused_until_;
    std::atomic<bool> stopping_{false};
    std::atomic<clock::rep> stop_at_{0};
    bool stop_seen_ = false, aborted_ = false;
    clock::time_point give_up_{};
    std::mutex returned_mu_;
    std::vector<std::pair<std::uint64_t, bool>> returned_;  // (connection, keep) from handlers that finished
    HandlerPool pool_;  // last: destroyed first, so its jobs never outlive what they use
};

}  // namespace detail
}  // namespace forge::serve
