#include "nn/progress.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace tapeflow::nn;

namespace {

// Output captured in a temporary file: not a terminal, like a CI log.
class Capture {
public:
    Capture() : file_(std::tmpfile()) { REQUIRE(file_ != nullptr); }
    ~Capture() { std::fclose(file_); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;

    std::FILE* file() { return file_; }
    std::string text() {
        std::fflush(file_);
        std::rewind(file_);
        std::string out;
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) out.append(buffer, n);
        std::fseek(file_, 0, SEEK_END);
        return out;
    }
    std::vector<std::string> lines() {
        std::vector<std::string> out;
        const std::string t = text();
        std::size_t start = 0;
        for (std::size_t nl; (nl = t.find('\n', start)) != std::string::npos; start = nl + 1)
            out.push_back(t.substr(start, nl - start));
        if (start < t.size()) out.push_back(t.substr(start));
        return out;
    }

private:
    std::FILE* file_;
};

// A clock the test sets by hand: every reading is exact and the test takes no real time.
struct FakeClock {
    double now = 0.0;
    std::function<double()> fn() {
        return [this] { return now; };
    }
};

const double not_a_number = std::numeric_limits<double>::quiet_NaN();
const double inf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("format_duration") {
    CHECK(format_duration(0) == "0.0s");
    CHECK(format_duration(0.04) == "0.0s");
    CHECK(format_duration(9.96) == "10.0s");
    CHECK(format_duration(59.94) == "59.9s");
    CHECK(format_duration(59.96) == "1m00s");
    CHECK(format_duration(65) == "1m05s");
    CHECK(format_duration(3599.4) == "59m59s");
    CHECK(format_duration(3600) == "1h00m00s");
    CHECK(format_duration(7387) == "2h03m07s");
    CHECK(format_duration(100 * 3600 + 1) == "100h00m01s");
    CHECK(format_duration(not_a_number) == "?");
    CHECK(format_duration(inf) == "?");
    CHECK(format_duration(-1) == "?");
}

TEST_CASE("plain mode prints one line per tenth of the run and a summary") {
    Capture out;
    FakeClock clock;
    {
        Progress progress(1000, {.out = out.file(), .clock = clock.fn()});
        CHECK_FALSE(progress.terminal());
        for (std::uint64_t step = 1; step <= 1000; ++step) {
            clock.now = static_cast<double>(step) / 128;  // 128 steps/s, exact in binary
            CHECK(progress.update(step, 0.5));
        }
        progress.finish();
        progress.finish();  // a second finish prints nothing
    }
    const auto lines = out.lines();
    REQUIRE(lines.size() == 11);
    CHECK(lines[0] == "train   100/1000   10% | loss 0.50000 | 128 steps/s | elapsed 0.8s | ETA 7.0s");
    CHECK(lines[4] == "train   500/1000   50% | loss 0.50000 | 128 steps/s | elapsed 3.9s | ETA 3.9s");
    CHECK(lines[9] == "train  1000/1000  100% | loss 0.50000 | 128 steps/s | elapsed 7.8s | ETA 0.0s");
    CHECK(lines[10] == "train done: 1000/1000 steps in 7.8s (128 steps/s), final loss 0.50000");
    CHECK(out.text().find('\r') == std::string::npos);
}

TEST_CASE("plain mode line counts for small totals and sparse updates") {
    const auto count_lines = [](std::uint64_t total, std::uint64_t every, ProgressOptions options = {}) {
        Capture out;
        FakeClock clock;
        options.out = out.file();
        options.clock = clock.fn();
        Progress progress(total, options);
        for (std::uint64_t step = every; step < total + every; step += every) progress.update(std::min(step, total), 1.0);
        return out.lines().size();
    };
    CHECK(count_lines(1, 1) == 1);
    CHECK(count_lines(3, 1) == 3);     // milestones ⌈k·3/10⌉ = 1, 1, 1, 2, 2, 2, 3, 3, 3, 3
    CHECK(count_lines(25, 1) == 10);   // 3, 5, 8, 10, 13, 15, 18, 20, 23, 25
    CHECK(count_lines(1000, 7) == 10);
    CHECK(count_lines(1000, 1, {.plain_lines = 4}) == 4);
    CHECK(count_lines(1000, 400) == 3);  // 400, 800, 1000: each update crossing milestones prints once
}

TEST_CASE("plain mode also prints after a long silence") {
    Capture out;
    FakeClock clock;
    Progress progress(100, {.out = out.file(), .plain_lines = 1, .plain_every_seconds = 30, .clock = clock.fn()});
    for (std::uint64_t step = 1; step <= 100; ++step) {
        clock.now = static_cast<double>(step);
        progress.update(step, 1.0);
    }
    const auto lines = out.lines();
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].starts_with("train   30/100   30%"));
    CHECK(lines[1].starts_with("train   60/100   60%"));
    CHECK(lines[2].starts_with("train   90/100   90%"));
    CHECK(lines[3].starts_with("train  100/100  100%"));
}

TEST_CASE("the running loss is the bias-corrected exponential mean") {
    Capture out;
    FakeClock clock;
    Progress progress(100, {.out = out.file(), .smoothing = 0.5, .clock = clock.fn()});
    CHECK(std::isnan(progress.running_loss()));
    progress.update(1, 1.0);
    CHECK(progress.running_loss() == 1.0);  // the first loss itself, not (1 − β)·ℓ
    progress.update(2, 2.0);
    CHECK(std::abs(progress.running_loss() - 1.25 / 0.75) <= 1e-15);
    progress.update(3, 3.0);
    CHECK(std::abs(progress.running_loss() - 2.125 / 0.875) <= 1e-15);

    // Against the closed form Σ β^(t−i) (1 − β) ℓ_i / (1 − β^t) for a longer sequence.
    Progress p2(100, {.out = out.file(), .smoothing = 0.9, .clock = clock.fn()});
    double weighted = 0, total_weight = 0;
    for (int t = 1; t <= 40; ++t) {
        const double loss = std::sin(t) + 2;
        p2.update(static_cast<std::uint64_t>(t), loss);
        weighted = 0.9 * weighted + 0.1 * loss;
        total_weight = 0.9 * total_weight + 0.1;
    }
    CHECK(std::abs(p2.running_loss() - weighted / total_weight) <= 1e-14);

    // β = 0 shows the latest loss.
    Progress p3(100, {.out = out.file(), .smoothing = 0.0, .clock = clock.fn()});
    p3.update(1, 4.0);
    p3.update(2, -7.25);
    CHECK(p3.running_loss() == -7.25);
}

TEST_CASE("rates and ETA") {
    Capture out;
    FakeClock clock;
    Progress progress(100, {.out = out.file(), .clock = clock.fn()});
    CHECK(std::isnan(progress.steps_per_second()));
    CHECK(std::isnan(progress.eta_seconds()));
    CHECK(progress.status_line() == "train    0/100    0% | loss - | - steps/s | elapsed 0.0s | ETA ?");
    clock.now = 35;
    progress.update(35, 2.0);
    CHECK(progress.steps_per_second() == 1.0);
    CHECK(progress.eta_seconds() == 65.0);
    CHECK(progress.status_line() == "train   35/100   35% | loss 2.0000 | 1.0 steps/s | elapsed 35.0s | ETA 1m05s");
    clock.now = 140;  // slower than a step per second: seconds per step reads better
    progress.update(70, 2.0);
    CHECK(progress.status_line() == "train   70/100   70% | loss 2.0000 | 2.00 s/step | elapsed 2m20s | ETA 1m00s");
    clock.now = 150;
    progress.update(120, 2.0);  // past the total: ETA 0, percentages keep counting
    CHECK(progress.eta_seconds() == 0.0);
    CHECK(progress.status_line().starts_with("train  120/100  120% |"));
}

TEST_CASE("a resumed run counts only its own steps") {
    Capture out;
    FakeClock clock;
    Progress progress(1000, {.out = out.file(), .initial_step = 500, .clock = clock.fn()});
    for (std::uint64_t step = 501; step <= 1000; ++step) {
        clock.now = static_cast<double>(step - 500) / 128;
        progress.update(step, 1.0);
    }
    progress.finish();
    const auto lines = out.lines();
    REQUIRE(lines.size() == 6);  // 60%, 70%, 80%, 90%, 100%, summary
    CHECK(lines[0] == "train   600/1000   60% | loss 1.0000 | 128 steps/s | elapsed 0.8s | ETA 3.1s");
    CHECK(lines[5] == "train done: 1000/1000 steps in 3.9s (128 steps/s), final loss 1.0000");
}

TEST_CASE("a non-finite loss is printed at once, counted, kept out of the mean and reported") {
    Capture out;
    FakeClock clock;
    Progress progress(100, {.out = out.file(), .clock = clock.fn()});
    for (std::uint64_t step = 1; step <= 4; ++step) {
        clock.now = static_cast<double>(step);
        CHECK(progress.update(step, 1.0));
    }
    clock.now = 5;
    CHECK_FALSE(progress.update(5, not_a_number));
    clock.now = 6;
    CHECK_FALSE(progress.update(6, -inf));
    CHECK(std::abs(progress.running_loss() - 1.0) <= 1e-15);
    CHECK(progress.nonfinite_losses() == 2);
    CHECK(progress.first_nonfinite_step() == std::optional<std::uint64_t>(5));
    CHECK(progress.status_line() == "train    6/100    6% | loss -inf (running 1.0000) | 1.0 steps/s | elapsed 6.0s | ETA 1m34s");
    progress.finish();
    const auto lines = out.lines();
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "train    5/100    5% | loss nan (running 1.0000) | 1.0 steps/s | elapsed 5.0s | ETA 1m35s");
    CHECK(lines[1] == "train stopped at 6/100 steps after 6.0s (1.0 steps/s), final loss 1.0000; "
                      "2 non-finite losses, the first at step 5");
}

TEST_CASE("a run whose every loss is NaN never shows a number") {
    Capture out;
    FakeClock clock;
    Progress progress(10, {.out = out.file(), .clock = clock.fn()});
    clock.now = 1;
    CHECK_FALSE(progress.update(1, not_a_number));
    progress.finish();
    const auto lines = out.lines();
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "train   1/10   10% | loss nan (running -) | 1.0 steps/s | elapsed 1.0s | ETA 9.0s");
    CHECK(lines[1] == "train stopped at 1/10 steps after 1.0s (1.0 steps/s), final loss -; 1 non-finite loss, "
                      "the first at step 1");
}

TEST_CASE("terminal mode rewrites one line, at most once per interval") {
    Capture out;
    FakeClock clock;
    {
        Progress progress(100, {.label = "fit",
                                .out = out.file(),
                                .update_every_seconds = 0.5,
                                .mode = ProgressMode::terminal,
                                .clock = clock.fn()});
        CHECK(progress.terminal());
        for (std::uint64_t step = 1; step <= 100; ++step) {
            clock.now = static_cast<double>(step) * 0.125;
            progress.update(step, 3.0);
        }
        CHECK(out.text().find('\n') == std::string::npos);
        progress.finish();
    }
    const std::string text = out.text();
    // Drawn at steps 1, 5, 9, …, 97 (every 0.5 s) and at the last step.
    CHECK(std::count(text.begin(), text.end(), '\r') == 26);
    CHECK(std::count(text.begin(), text.end(), '\n') == 2);
    const auto last_draw = text.rfind('\r');
    const auto newline = text.find('\n');
    std::string final_line = text.substr(last_draw + 1, newline - last_draw - 1);
    final_line.erase(final_line.find_last_not_of(' ') + 1);
    CHECK(final_line == "fit  100/100  100% | loss 3.0000 | 8.0 steps/s | elapsed 12.5s | ETA 0.0s");
    CHECK(text.substr(newline + 1) == "fit done: 100/100 steps in 12.5s (8.0 steps/s), final loss 3.0000\n");
}

TEST_CASE("terminal mode blanks the rest of a longer previous line") {
    Capture out;
    FakeClock clock;
    Progress progress(100, {.out = out.file(), .update_every_seconds = 0, .mode = ProgressMode::terminal,
                            .clock = clock.fn()});
    clock.now = 100;
    progress.update(50, 1.0);  // ETA "1m40s"
    clock.now = 101;
    progress.update(99, 1.0);  // ETA "1.0s": shorter
    const std::string text = out.text();
    const auto second = text.rfind('\r');
    CHECK(text.size() - second == second);  // both drawn segments have the same width
    CHECK(text.ends_with("ETA 1.0s "));
}

TEST_CASE("an unfinished terminal line is ended by the destructor without a summary") {
    Capture out;
    FakeClock clock;
    {
        Progress progress(10, {.out = out.file(), .mode = ProgressMode::terminal, .clock = clock.fn()});
        clock.now = 1;
        progress.update(1, 1.0);
    }
    const std::string text = out.text();
    CHECK(text.starts_with("\rtrain   1/10   10% | loss 1.0000"));
    CHECK(text.ends_with("\n"));
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
    CHECK(text.find("stopped") == std::string::npos);
}

TEST_CASE("invalid options are rejected") {
    Capture out;
    CHECK_THROWS_WITH_AS(Progress(0, {.out = out.file()}), "Progress: total_steps must be at least 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Progress(10, {.out = nullptr}), "Progress: the output stream is null", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Progress(10, {.out = out.file(), .smoothing = 1.0}),
                         "Progress: smoothing must lie in [0, 1), got 1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Progress(10, {.out = out.file(), .smoothing = not_a_number}),
                         "Progress: smoothing must lie in [0, 1), got nan", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Progress(10, {.out = out.file(), .plain_lines = 0}),
                         "Progress: plain_lines must be at least 1", std::invalid_argument);
    CHECK_THROWS_AS(Progress(10, {.out = out.file(), .update_every_seconds = -1}), std::invalid_argument);
    CHECK(out.text().empty());
}
