#pragma once
// `forge serve` as a child process for tests: started on a free loopback port, ready once it prints its
// listening line on stderr, and always stopped (SIGTERM, then SIGKILL if it will not go) when the
// object dies, so a failing test leaves no server behind. Every wait is bounded. Once it is ready a
// thread keeps reading its stderr (its log of requests), so the pipe never fills and blocks it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace forge::test {

class ServeProcess {
public:
    using clock = std::chrono::steady_clock;

    // Runs `program serve --port 0 args...` and waits for its listening line.
    ServeProcess(const std::string& program, const std::vector<std::string>& args,
                 std::chrono::milliseconds ready_timeout = std::chrono::seconds(60)) {
        int err[2];
        if (::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        std::vector<std::string> argv_s = {program, "serve", "--host", "127.0.0.1", "--port", "0"};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(err[1], 2);
            const int null = ::open("/dev/null", O_RDWR);
            ::dup2(null, 0);
            ::dup2(null, 1);
            ::execv(program.c_str(), argv.data());
            ::_exit(127);
        }
        ::close(err[1]);
        err_ = err[0];
        pidfd_ = int(::syscall(SYS_pidfd_open, pid_, 0));  // pollable until the child exits (glibc 2.36 has no C++ declaration)
        const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
        const auto deadline = clock::now() + ready_timeout;
        std::smatch m;
        while (!std::regex_search(stderr_, m, listening)) {
            if (!read_stderr(deadline)) {
                stop();
                throw std::runtime_error("forge serve did not become ready; stderr:\n" + stderr_);
            }
        }
        port_ = std::stoi(m[1]);
        drain_ = std::thread([this] {
            while (read_stderr(clock::time_point::max())) {
            }
        });
    }
    ServeProcess(const ServeProcess&) = delete;
    ServeProcess& operator=(const ServeProcess&) = delete;
    ~ServeProcess() { stop(); }

    int port() const { return port_; }
    pid_t pid() const { return pid_; }

    // Sends `sig` and waits (bounded) for the exit; returns the exit status (128 + signal if killed).
    int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        if (pid_ <= 0) return status_;
        ::kill(pid_, sig);
        pollfd p{pidfd_, POLLIN, 0};
        if (::poll(&p, 1, int(timeout.count())) <= 0) ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        if (drain_.joinable()) drain_.join();  // the child is gone: its stderr ends
        while (read_stderr(clock::now() + std::chrono::seconds(5))) {
        }
        ::close(err_);
        ::close(pidfd_);
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
    }

    std::string stderr_text() const {
        std::lock_guard lock(mu_);
        return stderr_;
    }

private:
    // Appends what the child wrote to stderr; false at EOF or the deadline.
    bool read_stderr(clock::time_point deadline) {
        const bool forever = deadline == clock::time_point::max();
        const auto left = forever ? -1 : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
        pollfd p{err_, POLLIN, 0};
        if ((!forever && left <= 0) || ::poll(&p, 1, forever ? -1 : int(std::min<long long>(left, 1 << 30))) <= 0) return false;
        char buf[4096];
        const ssize_t n = ::read(err_, buf, sizeof buf);
        if (n <= 0) return false;
        std::lock_guard lock(mu_);
        stderr_.append(buf, std::size_t(n));
        return true;
    }

    pid_t pid_ = -1;
    int err_ = -1, pidfd_ = -1, port_ = 0, status_ = -1;
    mutable std::mutex mu_;  // stderr_ grows on the drain thread
    std::string stderr_;
    std::thread drain_;
};

}  // namespace forge::test
