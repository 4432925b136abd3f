#include "tutorials/common/verify.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace tapeflow::tutorial {

namespace {

// Descriptions are padded to this many columns so values line up; a longer
// description just pushes its own line further right.
constexpr int kWhatWidth = 28;

// Every value takes 16 columns: whole numbers (counts, byte sizes, exact
// constants) as integers, otherwise fixed-point with 12 decimals where that
// shows 13+ significant digits, scientific otherwise, so tiny gradients and
// large constants keep their digits and the columns still line up.
constexpr int kValueWidth = 16;

std::string format_value(double v) {
    const double magnitude = std::abs(v);
    if (std::isfinite(v) && v == std::round(v) && magnitude < 1e15) return fmt::format("{:.0f}", v);
    if (v == 0 || !std::isfinite(v) || (magnitude >= 0.1 && magnitude < 100)) return fmt::format("{:.12f}", v);
    return fmt::format("{:.9e}", v);
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

bool Verifier::check_error(std::string_view what, double error, double bound) {
    if (!(bound >= 0))
        throw std::invalid_argument(fmt::format("Verifier::check_error('{}'): the bound must be >= 0, got {}", what, bound));
    const bool ok = error >= 0 && error <= bound;
    record(ok);
    fmt::print(out_, "  {} {:<{}}  error {:.2e}  {} bound {:.1e}\n", verdict(ok), what, kWhatWidth, error, ok ? "≤" : ">", bound);
    return ok;
}

bool Verifier::check_close(std::string_view what, Compared value, Compared reference, double rtol, double atol) {
    const double analytic = value.value, brute_force = reference.value;  // reference: the independent side
    if (!(rtol >= 0) || !(atol >= 0)) {
        throw std::invalid_argument(
            fmt::format("Verifier::check_close('{}'): tolerances must be >= 0, got rtol={} atol={}", what, rtol, atol));
    }
    const double diff = std::abs(analytic - brute_force);
    const double tolerance = atol + rtol * std::abs(brute_force);
    // Non-finite values must match exactly: with brute_force = -inf the
    // tolerance itself is inf and would accept anything. NaN matches nothing.
    const bool both_finite = std::isfinite(analytic) && std::isfinite(brute_force);
    const bool ok = analytic == brute_force || (both_finite && diff <= tolerance);
    record(ok);
    fmt::print(out_, "  {} {:<{}}  {} {:>{}}  {} {:>{}}  |diff| {:.1e}", verdict(ok), what, kWhatWidth, value.label,
               format_value(analytic), kValueWidth, reference.label, format_value(brute_force), kValueWidth,
               ok && analytic == brute_force ? 0.0 : diff);
    if (!ok) fmt::print(out_, "  > tol {:.1e}", tolerance);
    fmt::print(out_, "\n");
    return ok;
}

bool Verifier::check_at_most(std::string_view what, Compared value, Compared bound) {
    const bool ok = value.value <= bound.value;  // false for NaN on either side
    record(ok);
    fmt::print(out_, "  {} {:<{}}  {} {:>{}}  {} {} {:>{}}  margin {:.1e}\n", verdict(ok), what, kWhatWidth, value.label,
               format_value(value.value), kValueWidth, ok ? "≤" : ">", bound.label, format_value(bound.value), kValueWidth,
               bound.value - value.value);
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
