#pragma once
// What the MSL executors that compile a library's text at load share: finding and running an external
// compiler, hashing everything that goes into an object so a cache never serves a stale one, and
// writing cache files so that a reader never sees half of one. The emulator (emu/jit.hpp) compiles with
// the host's C++ compiler, the CUDA executor (cuda/jit.hpp) with nvcc.
#include <fcntl.h>
#include <sys/file.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "forge/core/error.hpp"

extern char** environ;

namespace forge::metal::toolchain {

namespace fs = std::filesystem;

inline std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

class Fnv1a {
public:
    Fnv1a& add(std::string_view s) {
        for (const char c : s) h_ = (h_ ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
        h_ = (h_ ^ 0xff) * 0x100000001b3ull;  // a separator, so ("ab","c") and ("a","bc") differ
        return *this;
    }
    std::string hex() const {
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
        return buf;
    }

private:
    std::uint64_t h_ = 0xcbf29ce484222325ull;
};

inline std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `content` to `path` through a temporary name, so a reader never sees half a file.
inline void write_atomically(const fs::path& path, const std::string& content) {
    const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        if (!out) throw Error("cannot write " + tmp.string());
    }
    fs::rename(tmp, path);
}

// A hash of every file under `dirs` (relative to `include`): the headers a generated translation unit
// includes, so an object built against other headers is never reused.
inline std::string headers_hash(const fs::path& include, std::initializer_list<const char*> dirs) {
    std::vector<fs::path> files;
    for (const char* dir : dirs)
        for (const auto& e : fs::recursive_directory_iterator(include / dir))
            if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    Fnv1a h;
    for (const auto& f : files) h.add(fs::relative(f, include).string()).add(read_all(f));
    return h.hex();
}

// The cache folder of an executor's compiled libraries: $`override_var`, else under the user's cache.
inline fs::path cache_dir(const char* override_var, const char* name) {
    if (const std::string d = env(override_var); !d.empty()) return d;
    if (const std::string x = env("XDG_CACHE_HOME"); !x.empty()) return fs::path(x) / "forge" / name;
    if (const std::string h = env("HOME"); !h.empty()) return fs::path(h) / ".cache" / "forge" / name;
    return fs::temp_directory_path() / ("forge-" + std::string(name) + "-" + std::to_string(::getuid()));
}

// forge's include folder ($FORGE_EMU_INCLUDE, else the one this header was compiled from): generated
// translation units include their shim from it. `probe` is a file the caller needs there.
inline fs::path include_dir(const char* probe) {
    fs::path dir = env("FORGE_EMU_INCLUDE");
    if (dir.empty()) dir = fs::path(__FILE__).parent_path().parent_path().parent_path();
    std::error_code ec;
    if (!fs::exists(dir / probe, ec))
        throw Error("forge's headers are not at '" + dir.string() +
                    "' (they are needed to compile MSL libraries): set FORGE_EMU_INCLUDE to forge's include folder");
    return fs::absolute(dir);
}

// An exclusive lock on `path` (created if need be) while the object lives: processes that would
// compile the same library take turns, and the later ones find it in the cache instead of compiling it
// again (test runs start several processes that load the same libraries at once).
class FileLock {
public:
    explicit FileLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (fd_ < 0) throw Error("cannot open the lock file '" + path.string() + "'");
        while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
        }
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock() {
        ::flock(fd_, LOCK_UN);
        ::close(fd_);
    }

private:
    int fd_;
};

// `name` found on PATH (or as given, when it names a path), or empty.
inline std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
    std::string_view path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
    while (!path.empty()) {
        const auto colon = path.find(':');
        const fs::path candidate = fs::path(path.substr(0, colon)) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    return "";
}

// Runs a compiler; its output goes to `log`. Returns the exit status (127: it could not be run).
inline int run_compiler(const std::string& program, const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv_s = {program};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return 127;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The compiler's log for an error message, cut to a readable length.
inline std::string log_excerpt(const fs::path& log) {
    std::string out = read_all(log);
    if (out.size() > 2000) out = out.substr(0, 2000) + "...";
    return out;
}

}  // namespace forge::metal::toolchain
