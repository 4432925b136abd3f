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
//   gradcheck_forward      gradcheck of (f(z), log-det) w.r.t. z and all parameters, on a few points
//   gradcheck_inverse      the same for the inverse at x = f(z)
//   batch_independence     each sample's outputs equal those of evaluating it alone
//   density                the flow StandardNormal(D) → b has ∫ p(x) dx = 1: by trapezoid quadrature
//                          on a grid for D ≤ 2, by importance sampling for D > 2 from a normal fitted
//                          to the flow's samples and widened (passing when |∫ − 1| ≤ max(tolerance,
//                          4 standard errors)). This catches a log-det with the wrong sign, which round
//                          trips cannot see. The estimate's variance grows exponentially with D: it is a
//                          strong check up to D ≈ 10.
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
    std::size_t gradcheck_points = 2;      // the gradchecks use the first this many points
    double gradcheck_atol = 1e-5;          // as GradcheckOptions
    double gradcheck_rtol = 1e-3;

    double density_tol = 2e-3;          // |∫ p − 1|
    double box_half_width = 10;         // quadrature box [−w, w]^D (D ≤ 2)
    std::size_t grid_points_1d = 4001;  // trapezoid nodes for D = 1
    std::size_t grid_points_2d = 201;   // nodes per axis for D = 2
    std::size_t mc_samples = 20000;     // importance samples for D > 2
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

    // The check called `name`, or nullptr if it did not run.
    const ConformanceCheck* find(std::string_view name) const;
    // A table: one line per check with pass/FAIL, worst value, tolerance and detail.
    std::string to_string() const;
};

// Runs the checks on b at the latent points z [N, D] (N ≥ 1). A failing bijector (wrong numbers,
// NaNs, or one that throws) gives ok = false with a readable detail, never an exception; throws
// std::invalid_argument only for invalid arguments: points not a non-empty [N, D] of finite values,
// a D that b does not act on, or invalid options (tolerances < 0, grids with fewer than 2 nodes…).
ConformanceReport check_bijector(Bijector& b, const Tensor& points, const ConformanceOptions& options = {});

}  // namespace tapeflow::flows

// One doctest line: CHECK_BIJECTOR(bijector, points[, options]). Expands to doctest's CHECK_MESSAGE,
// so it is usable wherever doctest is included; the library itself does not depend on doctest.
#define CHECK_BIJECTOR(bijector, points, ...)                                                                \
    do {                                                                                                     \
        const ::tapeflow::flows::ConformanceReport tapeflow_conformance_report_ =                            \
            ::tapeflow::flows::check_bijector((bijector), (points)__VA_OPT__(, ) __VA_ARGS__);               \
        CHECK_MESSAGE(tapeflow_conformance_report_.ok, tapeflow_conformance_report_.to_string());            \
    } while (false)
