// Progress: the status display of a training loop — step, running loss, steps/s, elapsed time, ETA.
//
// On a terminal it keeps one line up to date in place ('\r', at most ~10 redraws per second); in a
// log or a pipe (CI) it prints plain lines, one each time another tenth of the steps is done (and
// after a long silence), so logs stay short and readable. finish() prints a summary line.
// A NaN or infinite loss is never hidden: it is printed as "nan"/"inf" at once, counted, reported in
// the summary, and update() returns false so the loop can stop.
//
//     Progress progress(steps, {.label = "two moons"});
//     for (std::uint64_t step = 1; step <= steps; ++step) {
//         double loss = train_step();
//         if (!progress.update(step, loss)) break;   // non-finite loss
//     }
//     progress.finish();
//
// A plain line looks like
//     two moons  500/5000  10% | loss 0.84213 | 153.8 steps/s | elapsed 3.3s | ETA 29.3s
// and the summary like
//     two moons done: 5000/5000 steps in 32.5s (153.8 steps/s), final loss 0.32245
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>

namespace tapeflow::nn {

enum class ProgressMode {
    automatic,  // terminal when isatty(fileno(out)), else plain
    terminal,   // one line rewritten in place
    plain,      // periodic lines, for logs and pipes
};

struct ProgressOptions {
    std::string label = "train";
    std::FILE* out = stdout;
    // Terminal mode: at most one redraw per this many seconds (the last step and a first
    // non-finite loss are always drawn).
    double update_every_seconds = 0.1;
    ProgressMode mode = ProgressMode::automatic;
    // Plain mode: a line whenever step reaches ⌈k · total / plain_lines⌉, k = 1..plain_lines
    // (so 10 lines for a whole run at the default), and also once `plain_every_seconds` have passed
    // since the last line (0 disables the time-based lines).
    std::uint64_t plain_lines = 10;
    double plain_every_seconds = 60.0;
    // β of the running loss: m_t = β m_{t−1} + (1 − β) ℓ_t, m_0 = 0, shown bias-corrected as
    // m_t / (1 − β^t) (as Adam corrects its moments), t counting finite losses only. β = 0.98
    // averages over roughly the last 1/(1 − β) = 50 steps; β = 0 shows the latest loss.
    double smoothing = 0.98;
    // Steps already done before this run (when resuming from a checkpoint): the rate counts only
    // the steps of this run.
    std::uint64_t initial_step = 0;
    // Seconds on a monotonic clock; the default reads std::chrono::steady_clock. Tests inject one.
    std::function<double()> clock;
};

class Progress {
public:
    // Throws std::invalid_argument for total_steps = 0, a null `out`, smoothing outside [0, 1),
    // plain_lines = 0 or a negative interval.
    explicit Progress(std::uint64_t total_steps, ProgressOptions options = {});
    // Ends a terminal line left open (prints no summary: call finish() for that).
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Records that `step` steps (1..total) are done and the latest loss. Returns false when the loss
    // is NaN or ±inf; such a loss is shown as is but kept out of the running mean.
    bool update(std::uint64_t step, double loss);
    // Prints the summary line: steps, total time, rate, final running loss, non-finite losses.
    // Later calls do nothing.
    void finish();

    double running_loss() const;      // bias-corrected running mean; NaN before the first finite loss
    double steps_per_second() const;  // over this run; NaN before time has passed
    double eta_seconds() const;       // NaN while the rate is unknown; 0 once step ≥ total
    double elapsed_seconds() const;   // from construction to the latest update
    std::uint64_t step() const { return step_; }
    std::uint64_t nonfinite_losses() const { return nonfinite_count_; }
    std::optional<std::uint64_t> first_nonfinite_step() const { return first_nonfinite_step_; }
    bool terminal() const { return terminal_; }

    // The status as printed, e.g. "train  100/1000  10% | loss 0.34000 | 153.8 steps/s | elapsed 0.7s | ETA 5.9s".
    std::string status_line() const;
    std::string summary_line() const;

private:
    double now() const;
    void write(const std::string& text);
    void draw_terminal();
    void print_plain_line();
    std::uint64_t milestone(std::uint64_t k) const;

    std::uint64_t total_;
    ProgressOptions options_;
    bool terminal_;
    double start_time_;
    double last_time_;  // time of the latest update

    std::uint64_t step_ = 0;
    double last_loss_ = 0.0;
    bool has_update_ = false;
    double mean_ = 0.0;          // m_t, not yet bias-corrected
    double beta_power_ = 1.0;    // β^t
    std::uint64_t nonfinite_count_ = 0;
    std::optional<std::uint64_t> first_nonfinite_step_;

    // Terminal mode.
    double last_draw_time_ = 0.0;
    bool drawn_once_ = false;
    bool line_open_ = false;     // a drawn line not yet ended by '\n'
    bool dirty_ = false;         // updates since the last draw
    std::size_t drawn_width_ = 0;
    // Plain mode.
    std::uint64_t next_milestone_ = 1;  // k of the next ⌈k · total / plain_lines⌉ to report
    double last_line_time_ = 0.0;
    bool finished_ = false;
};

// "0.4s", "59.9s", "1m05s", "2h03m07s"; "?" for NaN, infinite or negative times.
std::string format_duration(double seconds);

}  // namespace tapeflow::nn
