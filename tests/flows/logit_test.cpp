#include "flows/logit.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// ∫ p(x) dx over an interval by the midpoint rule, p from a 1-D flow N(0, 1) → b.
double integral_1d(Bijector& b, double lo, double hi, std::size_t n) {
    StandardNormal base(1);
    const double h = (hi - lo) / static_cast<double>(n);
    Tensor x(Shape{n, 1});
    for (std::size_t i = 0; i < n; ++i) x[i] = lo + (static_cast<double>(i) + 0.5) * h;
    NoGrad no_grad;
    const Tensor lp = pushforward_log_prob(b, base, Var(x)).value();
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) total += std::exp(lp[i]) * h;
    return total;
}

// Points in the open interval (lo, hi), [N, D].
Tensor inside(std::size_t n, std::size_t d, double lo, double hi, Rng& rng) { return rand(Shape{n, d}, rng, lo, hi); }

}  // namespace

TEST_CASE("Sigmoid: values and log-dets by hand, any D") {
    Sigmoid s;
    CHECK(s.dim() == 0);
    CHECK(s.name() == "Sigmoid");
    const Transformed x = s.forward(Var(Tensor{{0.0, 2.0}}));
    const double s2 = 1 / (1 + std::exp(-2.0));
    CHECK(std::abs(x.value.value()[0] - 0.5) <= 1e-16);
    CHECK(std::abs(x.value.value()[1] - s2) <= 1e-16);
    CHECK(std::abs(x.log_abs_det_jacobian.item() - (std::log(0.25) + std::log(s2 * (1 - s2)))) <= 1e-14);
    const Transformed z = s.inverse(Var(Tensor{{0.25, 0.5, 0.9}}));
    CHECK(std::abs(z.value.value()[0] - std::log(1.0 / 3)) <= 1e-15);
    CHECK(std::abs(z.value.value()[2] - std::log(9.0)) <= 1e-14);
    CHECK(std::abs(z.log_abs_det_jacobian.item() + std::log(0.25 * 0.75 * 0.25 * 0.9 * 0.1)) <= 1e-13);
    // Far in the tails the log-det stays finite (log σ' ≈ −|z|).
    const double tail = s.forward(Var(Tensor(Shape{1, 1}, {-800.0}))).log_abs_det_jacobian.item();
    CHECK(std::abs(tail + 800) <= 1e-9);
}

TEST_CASE("Sigmoid and Logit: the inverse's domain is the open unit interval") {
    Sigmoid s;
    Logit l;
    CHECK_THROWS_WITH_AS(s.inverse(Var(Tensor{{0.5, 1.0}})),
                         doctest::Contains("Sigmoid::inverse: element [0, 1] = 1 is outside the open interval (0, 1)"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(s.inverse(Var(Tensor(Shape{2, 1}, {0.5, -0.1}))), doctest::Contains("element [1, 0] = -0.1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(l.forward(Var(Tensor(Shape{1, 1}, {NAN}))), doctest::Contains("Logit::forward: element [0, 0] = nan"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(s.forward(Var(Tensor{1.0, 2.0})), doctest::Contains("Sigmoid::forward: expects a non-empty batch"),
                         std::invalid_argument);
}

TEST_CASE("Logit is Sigmoid with the directions swapped") {
    Sigmoid s;
    Logit l;
    Rng rng(1);
    const Tensor u = inside(5, 3, 0.01, 0.99, rng);
    NoGrad no_grad;
    const Transformed a = l.forward(Var(u)), b = s.inverse(Var(u));
    CHECK(equal(a.value.value(), b.value.value()));
    CHECK(equal(a.log_abs_det_jacobian.value(), b.log_abs_det_jacobian.value()));
}

TEST_CASE("Sigmoid, Logit, LogitPreprocessing: conformance in D = 2, 3, 6") {
    // The density check integrates over a box of R^D, outside these maps' domain or range; the 1-D
    // integrals below check that the densities are normalized on theirs.
    Rng rng(2);
    const ConformanceOptions o{.density = false};
    for (const std::size_t d : {2, 3, 6}) {
        CAPTURE(d);
        Sigmoid s;
        CHECK_BIJECTOR(s, randn(Shape{16, d}, rng, 0.0, 2.0), o);
        Logit l;
        CHECK_BIJECTOR(l, inside(16, d, 0.02, 0.98, rng), o);
        LogitPreprocessing p(0.05);
        CHECK_BIJECTOR(p, randn(Shape{16, d}, rng, 0.0, 2.0), o);
    }
}

TEST_CASE("The densities are normalized on their domains") {
    Sigmoid s;
    Logit l;
    LogitPreprocessing p(0.05);
    // N(0,1) pushed through σ lives on (0, 1); through the preprocessing's forward, on
    // (−α/(1 − 2α), (1 − α)/(1 − 2α)); through logit, on R. The edges hold almost no mass.
    CHECK(std::abs(integral_1d(s, 0, 1, 200000) - 1) <= 1e-6);
    CHECK(std::abs(integral_1d(p, -0.05 / 0.9, 0.95 / 0.9, 200000) - 1) <= 1e-6);
    // Logit: the base N(0,1) must sit inside (0,1) for Logit's forward; the density of x = logit(z)
    // integrates to P(0 < z < 1) = Φ(1) − Φ(0).
    CHECK(std::abs(integral_1d(l, -40, 40, 400000) - (0.5 * std::erf(1 / std::sqrt(2.0)))) <= 1e-6);
}

TEST_CASE("LogitPreprocessing: docs/theory.md §6 term by term") {
    const double alpha = 0.05;
    LogitPreprocessing pre(alpha);
    CHECK(pre.name() == "LogitPreprocessing(alpha = 0.05)");
    CHECK(pre.alpha() == alpha);
    const Tensor x{{0.0, 0.3, 1.0}};
    const Transformed y = pre.inverse(Var(x));
    double log_det = 0;
    for (std::size_t j = 0; j < 3; ++j) {
        const double p = alpha + (1 - 2 * alpha) * x[j];
        CHECK(std::abs(y.value.value()[j] - (std::log(p) - std::log(1 - p))) <= 1e-14);
        log_det += std::log(1 - 2 * alpha) - std::log(p) - std::log(1 - p);
    }
    CHECK(std::abs(y.log_abs_det_jacobian.item() - log_det) <= 1e-13);
    // The forward undoes it, with the opposite log-det.
    const Transformed back = pre.forward(y.value);
    CHECK(max_abs_diff(back.value.value(), x) <= 1e-15);
    CHECK(std::abs(back.log_abs_det_jacobian.item() + log_det) <= 1e-13);
    // α = 0 is the plain sigmoid.
    LogitPreprocessing plain(0);
    Sigmoid s;
    const Tensor z{{-3.0, 0.1, 4.0}};
    NoGrad no_grad;
    CHECK(equal(plain.forward(Var(z)).value.value(), s.forward(Var(z)).value.value()));
    CHECK(equal(plain.forward(Var(z)).log_abs_det_jacobian.value(), s.forward(Var(z)).log_abs_det_jacobian.value()));
}

TEST_CASE("LogitPreprocessing: domain and option errors") {
    CHECK_THROWS_WITH_AS(LogitPreprocessing(0.5), doctest::Contains("alpha must be in [0, 0.5), got 0.5"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(LogitPreprocessing(-0.1), doctest::Contains("got -0.1"), std::invalid_argument);
    LogitPreprocessing pre(0.05);
    // Slightly outside [0, 1] is still inside the map's domain (−0.0556, 1.0556); further out is not.
    CHECK_NOTHROW(pre.inverse(Var(Tensor{{-0.05, 1.05}})));
    CHECK_THROWS_WITH_AS(pre.inverse(Var(Tensor{{0.5, 1.06}})),
                         doctest::Contains("LogitPreprocessing::inverse: element [0, 1] = 1.06 is outside the open interval "
                                           "(-0.0555556, 1.05556)"),
                         std::invalid_argument);
}

TEST_CASE("dequantize: x = (v + u)/256 lands in v's cell") {
    Rng rng(3);
    const Tensor v{{0, 1, 128}, {254, 255, 7}};
    const Tensor x = dequantize(v, rng);
    CHECK(x.shape() == v.shape());
    for (std::size_t i = 0; i < 6; ++i) {
        CHECK(x[i] >= v[i] / 256);
        CHECK(x[i] < (v[i] + 1) / 256);
        CHECK(std::floor(256 * x[i]) == v[i]);
    }
    Rng again(3);
    CHECK(equal(dequantize(v, again), x));  // the noise comes from the Rng only
    CHECK_THROWS_WITH_AS(dequantize(Tensor{3, 256}, rng), doctest::Contains("element 1 is 256"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(dequantize(Tensor{2.5}, rng), doctest::Contains("integers in 0..255, but element 0 is 2.5"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dequantize(Tensor{-1}, rng), doctest::Contains("element 0 is -1"), std::invalid_argument);
}

TEST_CASE("bits_per_dim: −(log p_y + Σ log|dy/dx| − D log 256)/(D ln 2)") {
    // A uniform model on [0,1)^D gives log p(x) = 0, so log p(v) = −D log 256: exactly 8 bits/dim.
    CHECK(std::abs(bits_per_dim(0.0, 0.0, 784) - 8.0) <= 1e-14);
    // The split between log p_y and the log-det does not matter, only their sum.
    CHECK(bits_per_dim(-1000.0, 250.0, 784) == bits_per_dim(-750.0, 0.0, 784));
    const double d = 3, expected = -(-4.5 + 1.25 - d * std::log(256.0)) / (d * std::log(2.0));
    CHECK(std::abs(bits_per_dim(-4.5, 1.25, 3) - expected) <= 1e-14);
    const Tensor per_sample = bits_per_dim(Tensor{-4.5, 0.0}, Tensor{1.25, 0.0}, 3);
    CHECK(std::abs(per_sample[0] - expected) <= 1e-14);
    CHECK(std::abs(per_sample[1] - 8.0) <= 1e-14);
    CHECK_THROWS_WITH_AS(bits_per_dim(0.0, 0.0, 0), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(bits_per_dim(Tensor{1, 2}, Tensor{1}, 3), doctest::Contains("vectors [N] of the same length"),
                         std::invalid_argument);
}
