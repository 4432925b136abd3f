#include "tutorials/common/verify.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace tapeflow::tutorial {

namespace {

// Descriptions are padded to this many columns so values line up; a longer
// description just pushes its own line further right.
constexpr int kWhatWidth = 28;

// Fixed-point with 12 decimals reads best for ordinary magnitudes; tiny or
// huge values switch to scientific so their digits stay visible.
std::string format_value(double v) {
    const double magnitude = std::abs(v);
    if (v == 0 || !std::isfinite(v) || (magnitude >= 1e-3 && magnitude < 1e5)) return fmt::format("{:.12f}", v);
    return fmt::format("{:.12e}", v);
}

const char* verdict(bool ok) { return ok ? "[ok]  " : "[FAIL]"; }

}  // namespace

Verifier::Verifier(std::FILE* out) : out_(out) {
    if (out_ == nullptr) throw std::invalid_argument("Verifier: output stream is null");
}

void Verifier::record(bool ok) {
    ++checks_;
    if (!ok) ++failures_;
}

void Verifier::section(std::string_view title) {
    ++sections_;
    fmt::print(out_, "\n== {}. {} ==\n", sections_, title);
}

bool Verifier::check_close(std::string_view what, double analytic, double brute_force, double rtol, double atol) {
    if (!(rtol >= 0) || !(atol >= 0)) {
        throw std::invalid_argument(
            fmt::format("Verifier::check_close('{}'): tolerances must be >= 0, got rtol={} atol={}", what, rtol, atol));
    }
    const double diff = std::abs(analytic - brute_force);
    const double tolerance = atol + rtol * std::abs(brute_force);
    const bool ok = analytic == brute_force || diff <= tolerance;  // NaN fails both comparisons
    record(ok);
    fmt::print(out_, "  {} {:<{}}  analytic {:>20}  brute force {:>20}  |diff| {:.1e}", verdict(ok), what, kWhatWidth,
               format_value(analytic), format_value(brute_force), ok && analytic == brute_force ? 0.0 : diff);
    if (!ok) fmt::print(out_, "  > tol {:.1e}", tolerance);
    fmt::print(out_, "\n");
    return ok;
}

bool Verifier::check(std::string_view what, bool ok, std::string_view detail) {
    record(ok);
    if (detail.empty()) {
        fmt::print(out_, "  {} {}\n", verdict(ok), what);
    } else {
        fmt::print(out_, "  {} {:<{}}  {}\n", verdict(ok), what, kWhatWidth, detail);
    }
    return ok;
}

void Verifier::summary() const {
    fmt::print(out_, "\n{} checks, {} failed\n", checks_, failures_);
}

}  // namespace tapeflow::tutorial
