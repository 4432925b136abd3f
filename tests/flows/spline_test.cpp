#include "flows/spline.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <doctest/doctest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/stable.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// K = 2 on [−1, 1] without floors, chosen so every number below is a short fraction:
//   widths  softmax(0, 0)      = (1/2, 1/2)  → x-knots −1, 0, 1
//   heights softmax(0, log 3)  = (1/4, 3/4)  → y-knots −1, −1/2, 1   (h = 1/2, 3/2; s = 1/2, 3/2)
//   δ at the middle knot       = softplus(r + softplus⁻¹(1)) = 2 for r = softplus⁻¹(2) − softplus⁻¹(1)
// so the knot derivatives are δ = (1, 2, 1).
constexpr SplineOptions hand_options{.bins = 2, .bound = 1, .min_bin_width = 0, .min_bin_height = 0, .min_derivative = 0};

Tensor hand_raw() {
    return Tensor{{0.0, 0.0, 0.0, std::log(3.0), stable::inverse_softplus(2) - stable::inverse_softplus(1)}};
}

// Random raw parameters [D, 3K − 1], big enough to make the bins and derivatives very uneven.
Tensor random_raw(std::size_t d, std::size_t k, Rng& rng) { return randn(Shape{d, spline_parameters_per_dim(k)}, rng) * 1.5; }

Tensor column(const std::vector<double>& v) {
    Tensor t(Shape{v.size(), 1});
    for (std::size_t i = 0; i < v.size(); ++i) t[i] = v[i];
    return t;
}

}  // namespace

TEST_CASE("spline by hand: K = 2 at the knots, the bin edges, inside each bin and in both tails") {
    RationalQuadraticSpline g(hand_raw(), hand_options);
    // ξ = 1/2 in bin 0: g = −1 + (1/2)(1/8 + 1/4)/(1/2 + (2 + 1 − 1)/4) = −13/16,
    //                   g' = (1/4)(2/4 + 2·(1/2)/4 + 1/4)/1² = 1/4.
    // ξ = 1/2 in bin 1: g = −1/2 + (3/2)(3/8 + 2/4)/(3/2 + 0) = 3/8,
    //                   g' = (9/4)(1/4 + 2·(3/2)/4 + 2/4)/(3/2)² = 3/2.
    // At the knots g = the y-knot and g' = δ: (−1, 1), (0, 2), (1, 1); the tails are the identity.
    const std::vector<double> z{-0.5, 0.5, 0.0, -1.0, 1.0, 2.0, -3.0};
    const std::vector<double> x{-13.0 / 16, 3.0 / 8, -0.5, -1.0, 1.0, 2.0, -3.0};
    const std::vector<double> dx{0.25, 1.5, 2.0, 1.0, 1.0, 1.0, 1.0};
    const Transformed f = g.forward(Var(column(z)));
    const Transformed b = g.inverse(Var(column(x)));
    for (std::size_t i = 0; i < z.size(); ++i) {
        CAPTURE(z[i]);
        CHECK(std::abs(f.value.value()[i] - x[i]) <= 1e-15);
        CHECK(std::abs(f.log_abs_det_jacobian.value()[i] - std::log(dx[i])) <= 1e-15);
        CHECK(std::abs(b.value.value()[i] - z[i]) <= 1e-15);
        CHECK(std::abs(b.log_abs_det_jacobian.value()[i] + std::log(dx[i])) <= 1e-15);
    }
    CHECK(g.name() == "RationalQuadraticSpline(D = 1, K = 2, B = 1)");
    // Infinite inputs are in the tails too: the identity, with log-det 0 (not 0 · ∞ = NaN).
    const double inf = std::numeric_limits<double>::infinity();
    const Transformed t = g.forward(Var(column({-inf, inf})));
    CHECK(t.value.value()[0] == -inf);
    CHECK(t.value.value()[1] == inf);
    CHECK(t.log_abs_det_jacobian.value()[0] == 0);
}

TEST_CASE("spline knots: softmax widths and heights with their floors, boundary derivatives 1") {
    const SplineOptions o{.bins = 2, .bound = 1, .min_bin_width = 0.1, .min_bin_height = 0.2, .min_derivative = 0.3};
    const Tensor raw(Shape{1, 1, 5}, {0.0, 0.0, 0.0, std::log(3.0), 0.0});
    const SplineKnots k = spline_knots(Var(raw), o);
    // widths 0.1 + 0.8·(1/2); heights 0.2 + 0.6·(1/4, 3/4) = (0.35, 0.65); interior δ = 1 at raw 0.
    const std::vector<double> x{-1, 0, 1}, y{-1, -1 + 2 * 0.35, 1}, d{1, 1, 1};
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(std::abs(k.x.value()[i] - x[i]) <= 1e-15);
        CHECK(std::abs(k.y.value()[i] - y[i]) <= 1e-15);
        CHECK(std::abs(k.derivative.value()[i] - d[i]) <= 1e-15);
    }
    // The floor holds however lopsided the raw values: no bin narrower than 2B·m_w.
    const Tensor lopsided(Shape{1, 1, 5}, {-50.0, 50.0, 50.0, -50.0, -80.0});
    const SplineKnots e = spline_knots(Var(lopsided), o);
    CHECK(e.x.value()[1] - e.x.value()[0] >= 2 * 0.1 - 1e-15);
    CHECK(e.y.value()[2] - e.y.value()[1] >= 2 * 0.2 - 1e-15);
    CHECK(e.derivative.value()[1] >= 0.3);
}

TEST_CASE("spline: raw = 0 is the identity map") {
    RationalQuadraticSpline g(3, {.bins = 5, .bound = 2});
    Rng rng(3);
    const Tensor z = randn(Shape{20, 3}, rng) * 2.0;
    const Transformed f = g.forward(Var(z));
    for (std::size_t i = 0; i < z.numel(); ++i) CHECK(std::abs(f.value.value()[i] - z[i]) <= 1e-14);
    for (std::size_t n = 0; n < 20; ++n) CHECK(std::abs(f.log_abs_det_jacobian.value()[n]) <= 1e-13);
}

TEST_CASE("spline round trip to 1e-12, including the knots, the edges and the tails") {
    Rng rng(4);
    const SplineOptions o{.bins = 6, .bound = 2};
    RationalQuadraticSpline g(random_raw(1, 6, rng), o);
    // The knots themselves, read from the spline; then random points over and past [−B, B].
    const Var raw = unsqueeze(g.raw().var(), 0);
    const SplineKnots k = spline_knots(raw, o);
    std::vector<double> z(k.x.value().span().begin(), k.x.value().span().end());
    for (double v : {-2.5, 2.5, -1e3, 1e3, std::nextafter(2.0, 3.0), std::nextafter(-2.0, -3.0)}) z.push_back(v);
    for (std::size_t i = 0; i < 200; ++i) z.push_back(rng.uniform(-3, 3));
    const Transformed f = g.forward(Var(column(z)));
    const Transformed b = g.inverse(f.value);
    double worst = 0, worst_det = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
        worst = std::max(worst, std::abs(b.value.value()[i] - z[i]) / std::max(1.0, std::abs(z[i])));
        worst_det = std::max(worst_det, std::abs(b.log_abs_det_jacobian.value()[i] + f.log_abs_det_jacobian.value()[i]));
    }
    CHECK(worst <= 1e-12);
    CHECK(worst_det <= 1e-12);
    // At the knots the spline passes through the y-knots exactly and the inverse lands on the x-knot.
    for (std::size_t i = 0; i <= 6; ++i) {
        CHECK(std::abs(f.value.value()[i] - k.y.value()[i]) <= 1e-15);
        CHECK(std::abs(b.value.value()[i] - z[i]) <= 1e-15);
    }
}

TEST_CASE("spline is strictly increasing with a positive derivative (a sweep over [−2B, 2B])") {
    Rng rng(5);
    for (std::size_t k : {1u, 2u, 7u}) {
        RationalQuadraticSpline g(random_raw(1, k, rng) * 2.0, {.bins = k, .bound = 1.5});
        const Tensor z = Tensor::linspace(-3, 3, 4001).reshape(Shape{4001, 1});
        const Transformed f = g.forward(Var(z));
        std::size_t violations = 0;
        for (std::size_t i = 1; i < 4001; ++i) violations += f.value.value()[i] > f.value.value()[i - 1] ? 0 : 1;
        CHECK(violations == 0);
        for (std::size_t i = 0; i < 4001; ++i) CHECK(std::isfinite(f.log_abs_det_jacobian.value()[i]));
    }
}

TEST_CASE("spline log-det equals the log of the autodiff Jacobian's determinant") {
    Rng rng(6);
    RationalQuadraticSpline g(random_raw(3, 4, rng), {.bins = 4, .bound = 2});
    const Tensor z = randn(Shape{12, 3}, rng) * 1.5;
    for (const bool inverse : {false, true}) {
        const Transformed t = inverse ? g.inverse(Var(z)) : g.forward(Var(z));
        for (std::size_t n = 0; n < 12; ++n) {
            Tensor point(Shape{1, 3});
            for (std::size_t j = 0; j < 3; ++j) point[j] = z[n * 3 + j];
            const Tensor J = jacobian([&](const Var& v) { return inverse ? g.inverse(v).value : g.forward(v).value; }, point);
            // Elementwise: J is diagonal, so log|det J| = Σ log J_jj and the off-diagonal is exactly 0.
            double log_det = 0;
            for (std::size_t i = 0; i < 3; ++i)
                for (std::size_t j = 0; j < 3; ++j)
                    if (i == j) log_det += std::log(J[i * 3 + j]);
                    else CHECK(J[i * 3 + j] == 0);
            CHECK(std::abs(log_det - t.log_abs_det_jacobian.value()[n]) <= 1e-10);
        }
    }
}

TEST_CASE("spline gradcheck with respect to the inputs and the raw parameters, both directions") {
    Rng rng(7);
    const std::size_t k = 3;
    const SplineOptions o{.bins = k, .bound = 1};
    const Tensor raw = randn(Shape{4, 2, spline_parameters_per_dim(k)}, rng);
    // Inside the bins, and in both tails (a point per row, away from the knots).
    const Tensor u(Shape{4, 2}, {-0.83, 0.41, 0.12, -0.27, 1.7, -2.2, 0.66, -0.05});
    for (const bool inverse : {false, true}) {
        CAPTURE(inverse);
        const GradcheckResult r = gradcheck(
            [&](const std::vector<Var>& in) {
                const SplineValue s = rational_quadratic_spline(in[0], in[1], o, inverse);
                return concat({s.value, s.log_derivative}, 1);
            },
            {u, raw});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("spline passes the conformance kit, with gradchecks beside the knots, at the edges and in the tails") {
    Rng rng(8);
    const SplineOptions o{.bins = 5, .bound = 2};
    // Moderate parameters (raw ~ N(0, 0.6²)) and a finer density grid (spacing 0.05): at the default 0.1
    // the trapezoid rule gives 0.981 for this spline and 1.0002 at 0.05, a resolution error, not a
    // wrong log-det. Very uneven bins are checked in D = 1 below, where the grid can be much finer.
    RationalQuadraticSpline g(random_raw(2, 5, rng) * 0.4, o);
    const Tensor points = randn(Shape{64, 2}, rng) * 1.5;
    // Gradcheck's central differences need smoothness within their step: step 1e-4 beside each knot
    // (the second derivative jumps there) and the edges ±B.
    const SplineKnots knots = spline_knots(unsqueeze(g.raw().var(), 0), o);
    std::vector<double> chosen;
    for (std::size_t i = 0; i <= 5; ++i) {
        chosen.push_back(knots.x.value()[i] + 1e-4);
        chosen.push_back(knots.x.value()[(5 + 1) + i] - 1e-4);
    }
    for (double v : {-3.0, 4.5}) {
        chosen.push_back(v);
        chosen.push_back(-v);
    }
    const Tensor at(Shape{chosen.size() / 2, 2}, chosen);
    CHECK_BIJECTOR(g, points, {.gradcheck_points = 4, .gradcheck_at = at, .grid_points_2d = 401});
    // Very uneven bins in D = 1, where the grid is fine (4001 nodes on [−10, 10]).
    RationalQuadraticSpline sharp(random_raw(1, 5, rng), o);
    CHECK_BIJECTOR(sharp, randn(Shape{32, 1}, rng) * 1.5, {.grid_points_1d = 40001});
}

TEST_CASE("spline: J·v by the fused node's tangent rule matches central differences, in u and raw, both directions") {
    Rng rng(12);
    const std::size_t k = 4;
    const SplineOptions o{.bins = k, .bound = 2};
    const Tensor u = randn(Shape{5, 3}, rng) * 1.5;  // a few in the tails
    const Tensor raw = randn(Shape{5, 3, spline_parameters_per_dim(k)}, rng);
    const Tensor du = randn(u.shape(), rng), draw = randn(raw.shape(), rng);
    for (const bool inverse : {false, true}) {
        CAPTURE(inverse);
        const GradcheckResult r = jvpcheck(
            [&](const std::vector<Var>& v) {
                const SplineValue s = rational_quadratic_spline(v[0], v[1], o, inverse);
                return concat({s.value, s.log_derivative}, 1);
            },
            {u, raw}, {du, draw});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("spline bijector: jvp of the value and the log-det matches central differences, both directions") {
    Rng rng(13);
    RationalQuadraticSpline spline(random_raw(3, 5, rng), {.bins = 5, .bound = 2});
    const Tensor z = randn(Shape{6, 3}, rng) * 1.5, v = randn(z.shape(), rng);
    for (const bool inverse : {false, true}) {
        CAPTURE(inverse);
        const GradcheckResult r = jvpcheck(
            [&](const std::vector<Var>& in) {
                const flows::Transformed t = inverse ? spline.inverse(in[0]) : spline.forward(in[0]);
                return concat({t.value, reshape(t.log_abs_det_jacobian, Shape{6, 1})}, 1);
            },
            {z}, {v});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("spline: bad input gives clear errors") {
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(2, {.bins = 0}),
                         "RationalQuadraticSpline: the number of bins K must be at least 1, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(2, {.bound = 0}),
                         "RationalQuadraticSpline: the bound B must be finite and > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(2, {.bound = -1}),
                         "RationalQuadraticSpline: the bound B must be finite and > 0, got -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(2, {.bins = 4, .min_bin_width = 0.25}),
                         "RationalQuadraticSpline: min_bin_width must lie in [0, 1/K) = [0, 0.25) for K = 4 bins, got 0.25",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(2, {.min_derivative = 1}),
                         "RationalQuadraticSpline: min_derivative must lie in [0, 1) (the boundary derivatives are 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(0), "RationalQuadraticSpline: the dimension D must be at least 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(RationalQuadraticSpline(Tensor::zeros(Shape{2, 7}), {.bins = 2}),
                         "RationalQuadraticSpline: the raw parameters must be [D, 3K − 1] = [D, 5] for K = 2 bins, got "
                         "shape [2, 7]",
                         std::invalid_argument);
    RationalQuadraticSpline g(2, {.bins = 2});
    CHECK_THROWS_AS(g.forward(Var(Tensor::zeros(Shape{3, 3}))), std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        rational_quadratic_spline(Var(Tensor::zeros(Shape{3, 2})), Var(Tensor::zeros(Shape{3, 2, 4})), {.bins = 2}, false),
        "rational_quadratic_spline: for an input [3, 2] and K = 2 bins the raw parameters must be [N, D, 3K − 1] = "
        "[3, 2, 5], got [3, 2, 4]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(spline_knots(Var(Tensor::zeros(Shape{3, 5})), {.bins = 2}),
                         "spline_knots: expects raw parameters [N, D, 3K − 1] = [N, D, 5] for K = 2 bins, got shape [3, 5]",
                         std::invalid_argument);
}

TEST_CASE("spline: the fused node (hand-derived backward) equals the composed tape ops, values and gradients") {
    Rng rng(9);
    const std::size_t k = 4;
    SplineOptions fused{.bins = k, .bound = 2};
    SplineOptions composed = fused;
    composed.fused = false;
    const Tensor raw = randn(Shape{6, 3, spline_parameters_per_dim(k)}, rng) * 1.5;
    const Tensor u = randn(Shape{6, 3}, rng) * 1.5;  // a few in the tails
    for (const bool inverse : {false, true}) {
        CAPTURE(inverse);
        std::vector<Var> got[2];
        Tensor values[2];
        for (int which = 0; which < 2; ++which) {
            Parameter pu(u), praw(raw);
            // One leaf each (every var() call records a new one), so that grad below differentiates with
            // respect to the leaves the loss was computed from.
            const Var vu = pu.var(), vraw = praw.var();
            const SplineValue s = rational_quadratic_spline(vu, vraw, which == 0 ? fused : composed, inverse);
            values[which] = concat({s.value, s.log_derivative}, 1).value();
            // A loss that weighs every output differently, so every gradient entry is exercised.
            const Var loss = sum(s.value * Var(Tensor::linspace(0.5, 2, 18).reshape(Shape{6, 3}))) + sum(square(s.log_derivative));
            got[which] = grad(loss, {vu, vraw});
        }
        for (std::size_t i = 0; i < values[0].numel(); ++i) CHECK(std::abs(values[0][i] - values[1][i]) <= 1e-13);
        for (std::size_t g = 0; g < 2; ++g)
            for (std::size_t i = 0; i < got[0][g].numel(); ++i)
                CHECK(std::abs(got[0][g].value()[i] - got[1][g].value()[i]) <=
                      1e-10 * std::max(1.0, std::abs(got[1][g].value()[i])));
    }
}
