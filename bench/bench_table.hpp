// The one table every bench executable prints into, and the timer behind its numbers.
//
// `./tapeflow bench` runs every build/bench/bench_* in turn; each prints rows of
//
//     bench     case                                        median  unit      details
//
// so their output reads as a single table (only the first executable prints the header; the entry
// script passes --no-header to the others). `median` is always the median over repeats: one slow
// repeat (another job taking the core) cannot move it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace tapeflow::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_between(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// The median of the samples (the upper one of the middle two for an even count). Empty → 0.
inline double median(std::vector<double> samples) {
    if (samples.empty()) return 0;
    const auto middle = samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2);
    std::nth_element(samples.begin(), middle, samples.end());
    return *middle;
}

struct TimerOptions {
    int repeats = 5;             // timings the median is taken over
    double min_seconds = 0.05;   // each timing runs the call back to back for at least this long
};

// CPU time of the whole process (all threads, user + system). On a machine shared with other jobs
// it stays close to the unloaded time while wall-clock time grows with the load.
inline double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

struct Timing {
    double wall;  // median wall-clock seconds per call
    double cpu;   // median process CPU seconds per call
};

// Median seconds per call of `call`. One warm-up call first (pages in operands, grows buffers, starts
// pool workers); then the number of calls per timing is calibrated so that a timing lasts at least
// `min_seconds`, which keeps clock resolution and per-timing overhead out of short calls.
template <class Call>
Timing median_seconds_per_call(Call&& call, TimerOptions options = {}) {
    std::vector<double> wall, cpu;
    auto time_calls = [&](std::size_t calls) {
        const double cpu_start = process_cpu_seconds();
        const auto start = clock_type::now();
        for (std::size_t c = 0; c < calls; ++c) call();
        const double seconds = seconds_between(start, clock_type::now());
        wall.push_back(seconds / static_cast<double>(calls));
        cpu.push_back((process_cpu_seconds() - cpu_start) / static_cast<double>(calls));
        return seconds;
    };
    time_calls(1);
    std::size_t calls = 1;
    while (time_calls(calls) < options.min_seconds / 4) calls *= 2;
    calls *= 4;
    wall.clear();
    cpu.clear();
    for (int r = 0; r < options.repeats; ++r) time_calls(calls);
    return {median(wall), median(cpu)};
}

// True unless the command line has --no-header.
inline bool wants_header(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--no-header") == 0) return false;
    return true;
}

inline constexpr int case_width = 52;

inline void print_header() {
    fmt::print("{:<8} {:<{}} {:>10}  {:<8}  {}\n", "bench", "case", case_width, "median", "unit", "details");
    fmt::print("{:-<8} {:-<{}} {:->10}  {:-<8}  {:-<40}\n", "", "", case_width, "", "", "");
}

// One row. `precision` is the number of decimals of the median.
inline void print_row(std::string_view bench, std::string_view label, double value, int precision,
                      std::string_view unit, std::string_view details = {}) {
    // fmt pads by code points, so labels with × or · line up like ASCII ones.
    fmt::print("{:<8} {:<{}} {:>10.{}f}  {:<8}  {}\n", bench, label, case_width, value, precision, unit, details);
    std::fflush(stdout);  // rows appear as they are measured, also when piped
}

}  // namespace tapeflow::bench
