#include "flows/distributions.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

const double log_two_pi = std::log(2 * std::numbers::pi);

// Per-column mean and (biased) variance of samples [n, D].
using Moments = tapeflow::testing::ColumnMoments;
using tapeflow::testing::column_moments;

}  // namespace

TEST_CASE("StandardNormal: log_prob is the closed form, samples have zero mean and unit variance") {
    StandardNormal p(2);
    const Tensor x{{0.0, 0.0}, {1.0, -2.0}, {30.0, 0.5}};
    const Tensor lp = p.log_prob(Var(x)).value();
    REQUIRE(lp.shape() == Shape{3});
    CHECK(std::abs(lp[0] - (-log_two_pi)) <= 1e-15);
    CHECK(std::abs(lp[1] - (-2.5 - log_two_pi)) <= 1e-14);
    CHECK(std::abs(lp[2] - (-0.5 * (900 + 0.25) - log_two_pi)) <= 1e-12);

    Rng rng(1);
    const Tensor s = p.sample(20000, rng).value();
    REQUIRE(s.shape() == Shape{20000, 2});
    const Moments m = column_moments(s);
    for (std::size_t d = 0; d < 2; ++d) {
        CHECK(std::abs(m.mean[d]) <= 0.03);  // 4 standard errors of 1/√20000
        CHECK(std::abs(m.var[d] - 1) <= 0.04);
    }
    CHECK(p.dim() == 2);
    CHECK(p.parameter_count() == 0);
}

TEST_CASE("StandardNormal: gradient of log_prob is −x") {
    const auto r = gradcheck([](const std::vector<Var>& v) { return StandardNormal(3).log_prob(v[0]); },
                             {Tensor{{0.3, -1.2, 2.0}, {-0.7, 0.1, 0.0}}});
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("distributions validate D and the batch shape") {
    CHECK_THROWS_WITH_AS(StandardNormal(0), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(DiagNormal(0), doctest::Contains("DiagNormal"), std::invalid_argument);
    StandardNormal p(2);
    CHECK_THROWS_WITH_AS(p.log_prob(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("StandardNormal::log_prob"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(p.log_prob(Var(Tensor{1.0, 2.0})), doctest::Contains("[N, D]"), std::invalid_argument);
    Logistic l(2);
    CHECK_THROWS_WITH_AS(l.log_prob(Var(Tensor(Shape{1, 1}, {1.0}))), doctest::Contains("D = 2"), std::invalid_argument);
}

TEST_CASE("DiagNormal: log_prob is the closed form; sample is reparameterized") {
    DiagNormal p(2);
    CHECK(p.named_parameters()[0].first == "mean");
    CHECK(p.named_parameters()[1].first == "log_std");
    p.mean().value = Tensor{1.0, -2.0};
    p.log_std().value = Tensor{std::log(0.5), std::log(3.0)};
    const Tensor x{{1.5, 1.0}, {0.0, -2.0}};
    const Tensor lp = p.log_prob(Var(x)).value();
    auto expected = [](double x1, double x2) {
        const double u1 = (x1 - 1.0) / 0.5, u2 = (x2 + 2.0) / 3.0;
        return -0.5 * (u1 * u1 + u2 * u2) - std::log(0.5) - std::log(3.0) - log_two_pi;
    };
    CHECK(std::abs(lp[0] - expected(1.5, 1.0)) <= 1e-14);
    CHECK(std::abs(lp[1] - expected(0.0, -2.0)) <= 1e-14);

    Rng rng(2);
    const Moments m = column_moments(p.sample(40000, rng).value());
    CHECK(std::abs(m.mean[0] - 1.0) <= 4 * 0.5 / 200);
    CHECK(std::abs(m.mean[1] + 2.0) <= 4 * 3.0 / 200);
    CHECK(std::abs(std::sqrt(m.var[0]) - 0.5) <= 0.01);
    CHECK(std::abs(std::sqrt(m.var[1]) - 3.0) <= 0.06);

    // x = μ + σ ε: d Σx / dμ_d = n and d Σx / d log σ_d = Σ σ_d ε_d.
    Tape tape;
    TapeScope scope(tape);
    p.zero_grad();
    Rng again(7);
    const Var s = p.sample(5, again);
    tape.backward(sum(s));
    CHECK(p.mean().grad[0] == 5.0);
    Rng replay(7);
    const Tensor eps = randn(Shape{5, 2}, replay);
    double expected_grad = 0;
    for (std::size_t i = 0; i < 5; ++i) expected_grad += 0.5 * eps[i * 2];
    CHECK(std::abs(p.log_std().grad[0] - expected_grad) <= 1e-14);
}

TEST_CASE("DiagNormal: gradcheck of log_prob and of the reparameterized sample") {
    DiagNormal p(3);
    p.mean().value = Tensor{0.2, -0.4, 1.0};
    p.log_std().value = Tensor{-0.3, 0.5, 0.1};
    const auto lp = gradcheck([&p](const std::vector<Var>& v) { return p.log_prob(v[0]); },
                              {Tensor{{0.3, -1.2, 2.0}, {-0.7, 0.1, 0.0}}}, {.parameters = p.parameters()});
    CHECK_MESSAGE(lp.ok, lp.report);
    // A fixed seed inside f makes the stochastic sample a deterministic function of the parameters.
    const auto s = gradcheck(
        [&p](const std::vector<Var>& v) {
            Rng rng(11);
            return p.sample(4, rng) * v[0];
        },
        {Tensor{1.5, -0.5, 2.0}}, {.parameters = p.parameters()});
    CHECK_MESSAGE(s.ok, s.report);
}

TEST_CASE("Uniform: constant density inside the box, −inf outside, zero gradient") {
    Uniform box(Tensor{-1.0, 0.0}, Tensor{1.0, 4.0});
    CHECK(box.dim() == 2);
    const Tensor x{{0.0, 1.0}, {-1.0, 4.0}, {1.5, 1.0}, {0.0, -1e-12}, {0.9, 3.9}};
    const Tensor lp = box.log_prob(Var(x)).value();
    const double inside = -std::log(8.0);
    CHECK(lp[0] == doctest::Approx(inside).epsilon(1e-15));
    CHECK(lp[1] == doctest::Approx(inside).epsilon(1e-15));  // the boundary belongs to the support
    CHECK(lp[2] == -std::numeric_limits<double>::infinity());
    CHECK(lp[3] == -std::numeric_limits<double>::infinity());
    CHECK(lp[4] == doctest::Approx(inside).epsilon(1e-15));

    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(Tensor{{0.0, 1.0}, {0.5, 0.5}});
    const Var loss = sum(box.log_prob(xv) + sum(xv, 1));
    tape.backward(loss);
    CHECK(equal(xv.grad(), Tensor::ones(Shape{2, 2})));  // only the Σx term contributes

    Rng rng(3);
    const Tensor s = box.sample(20000, rng).value();
    CHECK(tapeflow::min(s, 0)[0] >= -1.0);
    CHECK(tapeflow::max(s, 0)[0] < 1.0);
    CHECK(tapeflow::min(s, 0)[1] >= 0.0);
    CHECK(tapeflow::max(s, 0)[1] < 4.0);
    const Moments m = column_moments(s);
    CHECK(std::abs(m.mean[0]) <= 4 * std::sqrt(1.0 / 3 / 20000));
    CHECK(std::abs(m.mean[1] - 2.0) <= 4 * std::sqrt(4.0 / 3 / 20000));
    CHECK(std::abs(m.var[1] - 16.0 / 12) <= 0.05);

    CHECK(std::isnan(box.log_prob(Var(Tensor{{NAN, 1.0}})).value()[0]));

    // Forward mode: the density is flat, so J·v is zero along any direction (jvp is refused for an op
    // without a tangent rule, so this also checks that uniform_log_prob has one).
    const ValueAndProduct jv = jvp([&](const Var& in) { return box.log_prob(in); }, tape.variable(x),
                                   Tensor::full(x.shape(), 0.5));
    CHECK(equal(jv.product.value(), Tensor::zeros(Shape{5})));

    Uniform cube(3, 0.0, 2.0);
    CHECK(cube.log_prob(Var(Tensor{{1.0, 1.0, 1.0}})).value()[0] == doctest::Approx(-3 * std::log(2.0)).epsilon(1e-15));
}

TEST_CASE("Uniform: invalid bounds are rejected") {
    CHECK_THROWS_WITH_AS(Uniform(2, 1.0, 1.0), doctest::Contains("lo < hi"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Uniform(2, 0.0, std::numeric_limits<double>::infinity()), doctest::Contains("finite"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Uniform(Tensor{0.0, 0.0}, Tensor{1.0}), doctest::Contains("same shape"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Uniform(0, 0.0, 1.0), doctest::Contains("at least 1"), std::invalid_argument);
}

TEST_CASE("Logistic: log_prob is the closed form and stays finite in the tails") {
    Logistic p(2, 0.5, 2.0);
    auto closed = [](double x) {
        const double u = (x - 0.5) / 2.0;
        return -u - 2 * std::log1p(std::exp(-u)) - std::log(2.0);
    };
    const Tensor lp = p.log_prob(Var(Tensor{{0.5, 3.0}, {-4.0, 10.0}})).value();
    CHECK(std::abs(lp[0] - (closed(0.5) + closed(3.0))) <= 1e-14);
    CHECK(std::abs(lp[1] - (closed(-4.0) + closed(10.0))) <= 1e-14);
    // u = ±1000: log p = −|u| − log s − 2 log(1 + e^−|u|) = −|u| − log s; the naive form gives −inf
    // on one side.
    const Tensor tails = p.log_prob(Var(Tensor{{2000.5, -1999.5}})).value();
    CHECK(std::abs(tails[0] - 2 * (-1000.0 - std::log(2.0))) <= 1e-10);
    // Symmetric about loc.
    const Tensor sym = p.log_prob(Var(Tensor{{1.7, 0.5}, {-0.7, 0.5}})).value();
    CHECK(std::abs(sym[0] - sym[1]) <= 1e-15);

    Rng rng(4);
    const Moments m = column_moments(p.sample(40000, rng).value());
    const double var = 4.0 * std::numbers::pi * std::numbers::pi / 3;  // s²π²/3
    for (std::size_t d = 0; d < 2; ++d) {
        CHECK(std::abs(m.mean[d] - 0.5) <= 4 * std::sqrt(var / 40000));
        CHECK(std::abs(m.var[d] / var - 1) <= 0.05);
    }
    const auto g = gradcheck([&p](const std::vector<Var>& v) { return p.log_prob(v[0]); },
                             {Tensor{{0.3, -12.0}, {7.0, 0.5}}});
    CHECK_MESSAGE(g.ok, g.report);
    CHECK_THROWS_WITH_AS(Logistic(2, 0.0, 0.0), doctest::Contains("scale > 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Logistic(2, NAN, 1.0), doctest::Contains("finite loc"), std::invalid_argument);
}
