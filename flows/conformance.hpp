// The bijector conformance kit: one call that checks everything a bijector promises, the way TFP,
// Pyro, zuko and flowjax test theirs, and reports each check with its worst value:
//
//   round_trip_z           f⁻¹(f(z)) = z                       max |error| / max(1, ‖z‖∞) per sample
//   round_trip_x           f(f⁻¹(x)) = x at x = f(z)           max |error| / max(1, ‖x‖∞) per sample
//   log_det_autodiff       log|det ∂f/∂z| from `forward` = log|det J| of the autodiff Jacobian
//   log_det_finite_diff    … = log|det J| of a central finite-difference Jacobian (both via slogdet)
//   inverse_log_det        inverse log-det at x = f(z) = −(forward log-det at z)
//   parameter_gradients    every parameter gets a non-zero, finite gradient from a random projection
//                          of forward's outputs and log-dets (and of inverse's): names those that don't
//   gradcheck_forward      gradcheck of (f(z), log-det) w.r.t. z and all parameters, on the first
//                          gradcheck_points points (all with ConformanceOptions::all)
//   gradcheck_inverse      the same for the inverse at x = f(z)
//   gradcheck_chosen_forward / gradcheck_chosen_inverse
//                          the same at points the caller chose (options.gradcheck_at), where a
//                          bijector is most likely wrong: its tails, knots, the edges of its bins
//   batch_independence     each sample's outputs equal those of evaluating it alone
//   density                the flow StandardNormal(D) → b has ∫ p(x) dx = 1: by trapezoid quadrature
//                          on a grid for D ≤ 2, by importance sampling for D > 2 from a normal fitted
//                          to the flow's samples and widened (passing when |∫ − 1| ≤ max(tolerance,
//                          4 standard errors)). This catches a log-det with the wrong sign, which round
//                          trips cannot see. The estimate's variance grows exponentially with D: it is a
//                          strong check up to D ≈ 10.
//
// What it proves, and what it does not: every check compares the bijector with ITSELF (its inverse
// with its forward, its log-det with its own Jacobian, its gradient with its own finite differences,
// its density with 1). A bijector that consistently computes the wrong function (a spline with the
// wrong knots, a coupling that conditions on the wrong half) passes. So each bijector also needs a
// test against values computed by hand; the kit is the half of the testing that is the same for all.
//
// A Flow is a Bijector: CHECK_BIJECTOR(flow, points) checks its whole stack, and its density check
// integrates the flow's own log_prob (its base through its layers) instead of N(0, I) through b; its
// base's parameters are left out of the gradient checks (forward and inverse never read them).
//
// The density check assumes b maps R^D onto R^D (turn it off for a bijector onto a bounded set).
// The bijector runs in its current mode (call eval() first on one that behaves differently in
// training, like batch normalization). Nothing the caller can see changes: the checks record on a
// private tape, parameter values are restored exactly and parameter gradients are put back.
//
// In a doctest file, one line tests a bijector and prints the report if anything fails:
//     CHECK_BIJECTOR(my_bijector, points);            // or CHECK_BIJECTOR(b, points, options)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flows/bijector.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::flows {

struct ConformanceOptions {
    // Which checks run.
    bool round_trip = true;
    bool log_det = true;  // both log_det_autodiff and log_det_finite_diff
    bool inverse_log_det = true;
    bool gradients = true;  // parameter_gradients and both gradchecks
    bool batch_independence = true;
    bool density = true;

    double round_trip_tol = 1e-9;          // relative to max(1, ‖point‖∞)
    double log_det_tol = 1e-8;             // absolute, against the autodiff Jacobian
    double finite_diff_log_det_tol = 1e-5; // absolute, against the finite-difference Jacobian
    double finite_diff_eps = 1e-6;         // step for coordinate j: eps · max(1, |z_j|)
    double inverse_log_det_tol = 1e-9;     // relative to max(1, |forward log-det|)
    double batch_tol = 1e-12;              // relative to max(1, |value|)
    std::size_t jacobian_points = 32;      // the log-det checks use the first this many points
    static constexpr std::size_t all = static_cast<std::size_t>(-1);
    std::size_t gradcheck_points = 2;      // the gradchecks use the first this many points (or `all`)
    // Latent points [M, D] the caller chose (tails, knots, bin edges…) for two more gradchecks: of
    // forward at them and of inverse at their images. Undefined (the default): no extra checks.
    // To check the inverse at a chosen x, pass z = f⁻¹(x). Gradcheck's central differences need the
    // function smooth within its step of each point: at a knot where a derivative jumps, step just
    // beside it.
    Tensor gradcheck_at;
    double gradcheck_atol = 1e-5;          // as GradcheckOptions
    double gradcheck_rtol = 1e-3;

    double density_tol = 2e-3;          // |∫ p − 1|
    double box_half_width = 10;         // quadrature box [−w, w]^D (D ≤ 2)
    std::size_t grid_points_1d = 4001;  // trapezoid nodes for D = 1
    std::size_t grid_points_2d = 201;   // nodes per axis for D = 2
    std::size_t mc_samples = 20000;     // importance samples for D > 2; for D ≤ 2, the samples that
                                        // measure the mass outside the box (warned about when it is
                                        // at least density_tol / 10)
    double mc_scale = 1.5;              // the proposal's std over the flow samples' std, per coordinate
    std::uint64_t seed = 0;             // random projections and importance samples
};

struct ConformanceCheck {
    std::string name;
    bool passed = false;
    double worst = 0;      // the largest error measured (NaN when the bijector produced a NaN)
    double tolerance = 0;  // passes when worst ≤ tolerance
    std::string detail;    // where the worst value occurred, or what went wrong
};

struct ConformanceReport {
    std::string bijector;  // its name()
    std::size_t points = 0;
    std::size_t dim = 0;
    bool ok = true;  // every check that ran passed
    std::vector<ConformanceCheck> checks;
    // What did not fail but makes a result doubtful, e.g. the mass outside the density check's box.
    std::vector<std::string> warnings;

    // The check called `name`, or nullptr if it did not run.
    const ConformanceCheck* find(std::string_view name) const;
    // A table: one line per check with pass/FAIL, worst value, tolerance and detail, then the warnings.
    std::string to_string() const;
};

// Runs the checks on b at the latent points z [N, D] (N ≥ 1). A failing bijector (wrong numbers,
// NaNs, or one that throws) gives ok = false with a readable detail, never an exception; throws
// std::invalid_argument only for invalid arguments: points not a non-empty [N, D] of finite values,
// a D that b does not act on, or invalid options (tolerances < 0, grids with fewer than 2 nodes…).
ConformanceReport check_bijector(Bijector& b, const Tensor& points, const ConformanceOptions& options = {});

class ConditionalBijector;  // flows/conditional.hpp
// A conditional bijector f(·; c) checked as a bijector at each fixed context c, one row of
// contexts [K, C] at a time (through AtContext, so the gradient checks cover b's parameters and the
// density check integrates p(x | c) for that c): one report per context, in order. Throws
// std::invalid_argument for contexts that are not a non-empty [K, C] with b's C, or a b without a
// context, besides check_bijector's own argument errors.
std::vector<ConformanceReport> check_conditional_bijector(ConditionalBijector& b, const Tensor& points,
                                                          const Tensor& contexts, const ConformanceOptions& options = {});

}  // namespace tapeflow::flows

// One doctest line: CHECK_BIJECTOR(bijector, points[, options]). Expands to doctest's CHECK_MESSAGE,
// so it is usable wherever doctest is included; the library itself does not depend on doctest.
#define CHECK_BIJECTOR(bijector, points, ...)                                                                \
    do {                                                                                                     \
        const ::tapeflow::flows::ConformanceReport tapeflow_conformance_report_ =                            \
            ::tapeflow::flows::check_bijector((bijector), (points)__VA_OPT__(, ) __VA_ARGS__);               \
        CHECK_MESSAGE(tapeflow_conformance_report_.ok, tapeflow_conformance_report_.to_string());            \
    } while (false)

// CHECK_CONDITIONAL_BIJECTOR(bijector, points, contexts[, options]): one CHECK per context.
#define CHECK_CONDITIONAL_BIJECTOR(bijector, points, contexts, ...)                                          \
    do {                                                                                                     \
        for (const ::tapeflow::flows::ConformanceReport& tapeflow_conformance_report_ :                      \
             ::tapeflow::flows::check_conditional_bijector((bijector), (points), (contexts)__VA_OPT__(, ) __VA_ARGS__)) \
            CHECK_MESSAGE(tapeflow_conformance_report_.ok, tapeflow_conformance_report_.to_string());        \
    } while (false)
