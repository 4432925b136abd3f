// Running a tutorial executable as a child process for the reliability tests: with its stderr
// captured through a pipe (a file could be refused by the child's limits), optionally with every
// write to a regular file refused, or started in the background to be killed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace tapeflow::test {

struct ChildResult {
    int exit_code;  // -1 when killed by a signal
    std::string err;
};

struct ChildOptions {
    // RLIMIT_FSIZE = 0 with SIGXFSZ ignored: write() to a regular file fails with EFBIG, as a full
    // disk fails with ENOSPC.
    bool refuse_writes = false;
};

// Forks and execs `exe args`, stdout to /dev/null and stderr into the pipe `err_fd` (closed in the
// parent by the caller). Returns the child's pid, or -1.
inline pid_t start_child(const std::string& exe, const std::vector<std::string>& args, ChildOptions options,
                         int* err_fd) {
    int err[2];
    if (::pipe(err) != 0) return -1;
    const pid_t child = ::fork();
    if (child < 0) return -1;
    if (child == 0) {
        if (options.refuse_writes) {
            const rlimit none{0, 0};
            ::setrlimit(RLIMIT_FSIZE, &none);
            ::signal(SIGXFSZ, SIG_IGN);
        }
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(err[1], 2);
        ::close(err[0]);
        std::vector<char*> argv{const_cast<char*>(exe.c_str())};
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(exe.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(err[1]);
    *err_fd = err[0];
    return child;
}

// Reads the child's stderr to its end and waits for it.
inline ChildResult finish_child(pid_t child, int err_fd) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(err_fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    ::close(err_fd);
    int status = 0;
    ::waitpid(child, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

inline ChildResult run_child(const std::string& exe, const std::vector<std::string>& args, ChildOptions options = {}) {
    int err_fd = -1;
    const pid_t child = start_child(exe, args, options, &err_fd);
    if (child < 0) return {-2, "fork or pipe failed"};
    return finish_child(child, err_fd);
}

}  // namespace tapeflow::test
