#include "nn/progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

constexpr double unknown = std::numeric_limits<double>::quiet_NaN();

// Five significant digits with trailing zeros kept, so a redrawn line does not change width:
// "0.34000", "-1.3490", "1.2346e-06"; fmt spells non-finite values "nan", "inf", "-inf".
std::string format_loss(double loss) { return fmt::format("{:#.5g}", loss); }

std::string format_rate(double steps_per_second) {
    if (!std::isfinite(steps_per_second) || steps_per_second <= 0) return "- steps/s";
    if (steps_per_second < 1) return fmt::format("{:.2f} s/step", 1 / steps_per_second);
    if (steps_per_second < 100) return fmt::format("{:.1f} steps/s", steps_per_second);
    return fmt::format("{:.0f} steps/s", steps_per_second);
}

}  // namespace

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    // Tenths below a minute; "59.96" rounds up into the minute format rather than printing "60.0s".
    if (std::round(seconds * 10) < 600) return fmt::format("{:.1f}s", std::round(seconds * 10) / 10);
    const auto total = static_cast<long long>(std::llround(seconds));
    if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
    return fmt::format("{}h{:02}m{:02}s", total / 3600, total / 60 % 60, total % 60);
}

Progress::Progress(std::uint64_t total_steps, ProgressOptions options)
    : total_(total_steps), options_(std::move(options)) {
    if (total_ == 0) throw std::invalid_argument("Progress: total_steps must be at least 1");
    if (options_.out == nullptr) throw std::invalid_argument("Progress: the output stream is null");
    if (!(options_.smoothing >= 0 && options_.smoothing < 1))
        throw std::invalid_argument(fmt::format("Progress: smoothing must lie in [0, 1), got {}", options_.smoothing));
    if (options_.plain_lines == 0) throw std::invalid_argument("Progress: plain_lines must be at least 1");
    if (!(options_.update_every_seconds >= 0) || !(options_.plain_every_seconds >= 0))
        throw std::invalid_argument("Progress: update_every_seconds and plain_every_seconds must be ≥ 0");
    if (!options_.clock)
        options_.clock = [] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        };
    terminal_ = options_.mode == ProgressMode::terminal ||
                (options_.mode == ProgressMode::automatic && ::isatty(::fileno(options_.out)) == 1);
    start_time_ = last_time_ = last_line_time_ = now();
    step_ = options_.initial_step;
    // Milestones already passed before a resumed run are not reported again.
    while (next_milestone_ <= options_.plain_lines && milestone(next_milestone_) <= step_) ++next_milestone_;
}

Progress::~Progress() {
    if (line_open_) write("\n");
}

double Progress::now() const { return options_.clock(); }

std::uint64_t Progress::milestone(std::uint64_t k) const {
    // ⌈k · total / plain_lines⌉ in exact integer arithmetic (long double would round for huge totals).
    const auto q = total_ / options_.plain_lines, r = total_ % options_.plain_lines;
    return k * q + (k * r + options_.plain_lines - 1) / options_.plain_lines;
}

bool Progress::update(std::uint64_t step, double loss) {
    const double t = now();
    step_ = step;
    last_loss_ = loss;
    last_time_ = t;
    has_update_ = true;
    const bool finite = std::isfinite(loss);
    const bool first_nonfinite = !finite && !first_nonfinite_step_;
    if (finite) {
        mean_ = options_.smoothing * mean_ + (1 - options_.smoothing) * loss;
        beta_power_ *= options_.smoothing;
    } else {
        ++nonfinite_count_;
        if (first_nonfinite) first_nonfinite_step_ = step;
    }

    if (terminal_) {
        dirty_ = true;
        if (!drawn_once_ || first_nonfinite || step_ >= total_ || t - last_draw_time_ >= options_.update_every_seconds)
            draw_terminal();
    } else {
        bool print = first_nonfinite;
        if (next_milestone_ <= options_.plain_lines && step_ >= milestone(next_milestone_)) {
            print = true;
            while (next_milestone_ <= options_.plain_lines && milestone(next_milestone_) <= step_) ++next_milestone_;
        }
        if (options_.plain_every_seconds > 0 && t - last_line_time_ >= options_.plain_every_seconds) print = true;
        if (print) print_plain_line();
    }
    return finite;
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (terminal_ && dirty_) draw_terminal();
    if (line_open_) write("\n");
    line_open_ = false;
    write(summary_line() + "\n");
}

double Progress::running_loss() const {
    // β^t = 1 exactly when no finite loss has been seen (t = 0).
    return beta_power_ == 1.0 ? unknown : mean_ / (1 - beta_power_);
}

double Progress::elapsed_seconds() const { return last_time_ - start_time_; }

double Progress::steps_per_second() const {
    const double elapsed = elapsed_seconds();
    if (!(elapsed > 0) || step_ < options_.initial_step) return unknown;
    return static_cast<double>(step_ - options_.initial_step) / elapsed;
}

double Progress::eta_seconds() const {
    if (step_ >= total_) return 0.0;
    const double rate = steps_per_second();
    if (!(rate > 0)) return unknown;
    return static_cast<double>(total_ - step_) / rate;
}

std::string Progress::status_line() const {
    const auto width = fmt::formatted_size("{}", total_);
    const auto percent = static_cast<int>(std::floor(100.0 * static_cast<double>(step_) / static_cast<double>(total_)));
    const std::string running = std::isnan(running_loss()) ? "-" : format_loss(running_loss());
    // The running mean skips non-finite losses, so the latest one is shown beside it, never hidden.
    const std::string loss = has_update_ && !std::isfinite(last_loss_)
                                 ? fmt::format("{} (running {})", format_loss(last_loss_), running)
                                 : running;
    return fmt::format("{}  {:>{}}/{}  {:>3}% | loss {} | {} | elapsed {} | ETA {}", options_.label, step_, width,
                       total_, percent, loss, format_rate(steps_per_second()), format_duration(elapsed_seconds()),
                       format_duration(eta_seconds()));
}

std::string Progress::summary_line() const {
    std::string line = step_ >= total_ ? fmt::format("{} done: {}/{} steps in {}", options_.label, step_, total_,
                                                     format_duration(elapsed_seconds()))
                                       : fmt::format("{} stopped at {}/{} steps after {}", options_.label, step_,
                                                     total_, format_duration(elapsed_seconds()));
    line += fmt::format(" ({}), final loss {}", format_rate(steps_per_second()),
                        std::isnan(running_loss()) ? std::string("-") : format_loss(running_loss()));
    if (nonfinite_count_ > 0)
        line += fmt::format("; {} non-finite loss{}, the first at step {}", nonfinite_count_,
                            nonfinite_count_ == 1 ? "" : "es", *first_nonfinite_step_);
    return line;
}

void Progress::write(const std::string& text) {
    // A progress display must never stop training: write errors are ignored.
    std::fwrite(text.data(), 1, text.size(), options_.out);
    std::fflush(options_.out);
}

void Progress::draw_terminal() {
    std::string line = status_line();
    const std::size_t width = line.size();
    // Blank out what is left of a longer previous line (no terminal escape codes needed).
    if (width < drawn_width_) line.append(drawn_width_ - width, ' ');
    write("\r" + line);
    drawn_width_ = width;
    last_draw_time_ = last_time_;
    drawn_once_ = line_open_ = true;
    dirty_ = false;
}

void Progress::print_plain_line() {
    write(status_line() + "\n");
    last_line_time_ = last_time_;
}

}  // namespace tapeflow::nn
