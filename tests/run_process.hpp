#pragma once
// Runs a program and captures its stdout, stderr and exit status: for tests of the forge CLI.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace forge::test {

struct ProcessResult {
    int exit_code = -1;  // the exit status, or 128 + signal number when a signal ended the program
    std::string out;
    std::string err;
};

// `arg` as one /bin/sh word, whatever bytes it holds.
inline std::string shell_quote(std::string_view arg) {
    std::string q = "'";
    for (const char c : arg) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs args[0] with the rest as its arguments and stdin from /dev/null, so nothing waits for input.
// stdout comes through a pipe; stderr goes to a temporary file, which cannot fill up and block the child
// while the pipe is being read.
inline ProcessResult run_process(const std::vector<std::string>& args) {
    std::string err_path = (std::filesystem::temp_directory_path() / "forge-stderr-XXXXXX").string();
    const int err_fd = ::mkstemp(err_path.data());
    if (err_fd < 0) throw std::runtime_error("mkstemp failed for " + err_path);
    ::close(err_fd);

    std::string cmd;
    for (const auto& a : args) cmd += shell_quote(a) + " ";
    cmd += "</dev/null 2>" + shell_quote(err_path);

    ProcessResult r;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) throw std::runtime_error("popen failed for: " + cmd);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
    const int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;

    std::ifstream err(err_path, std::ios::binary);
    r.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
    std::filesystem::remove(err_path);
    return r;
}

}  // namespace forge::test
