#include "flows/ode.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// dz/dt = −t·z, whose solution is z(t) = z(0)·exp(−t²/2).
ode::State decay(const ode::State& y, double t) { return {-t * y[0]}; }

double error_at(std::size_t steps) {
    const Tensor z0{{0.3, -1.7, 2.0}};
    const ode::State y1 = ode::rk4(decay, {Var(z0)}, 0.0, 2.0, steps);
    double worst = 0;
    for (std::size_t i = 0; i < 3; ++i) worst = std::max(worst, std::abs(y1[0].value()[i] - z0[i] * std::exp(-2.0)));
    return worst;
}

}  // namespace

TEST_CASE("ode::rk4: a linear ODE gives the RK4 stability polynomial, computed by hand") {
    // For dz/dt = a z one RK4 step multiplies z by R(ah) = 1 + ah + (ah)²/2 + (ah)³/6 + (ah)⁴/24.
    const double a = -0.8, h = 0.25;
    const ode::Field f = [a](const ode::State& y, double) { return ode::State{a * y[0]}; };
    const ode::State y = ode::rk4(f, {Var(Tensor{1.5})}, 0.0, 1.0, 4);
    const double x = a * h, r = 1 + x + x * x / 2 + x * x * x / 6 + x * x * x * x / 24;
    CHECK(y[0].value()[0] == doctest::Approx(1.5 * std::pow(r, 4)).epsilon(1e-14));
}

TEST_CASE("ode::rk4: against exp(−t²/2), fourth order (error ratio ≈ 16 when the step halves)") {
    const double e8 = error_at(8), e16 = error_at(16), e32 = error_at(32);
    CHECK(e8 < 1e-3);
    CHECK(e16 / e32 > 14.0);
    CHECK(e16 / e32 < 18.0);
    CHECK(e8 / e16 > 13.0);
    CHECK(e8 / e16 < 19.0);
}

TEST_CASE("ode::rk4: a state of two entries (the harmonic oscillator), backwards in time, and the trajectory") {
    // y1' = y2, y2' = −y1 from (1, 0): (cos t, −sin t).
    const ode::Field f = [](const ode::State& y, double) { return ode::State{y[1], -y[0]}; };
    const ode::State y = ode::rk4(f, {Var(Tensor{1.0}), Var(Tensor{0.0})}, 0.0, 3.0, 60);
    CHECK(std::abs(y[0].value()[0] - std::cos(3.0)) < 1e-6);
    CHECK(std::abs(y[1].value()[0] + std::sin(3.0)) < 1e-6);
    const ode::State back = ode::rk4(f, y, 3.0, 0.0, 60);
    CHECK(back[0].value()[0] == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(std::abs(back[1].value()[0]) < 1e-6);
    const auto path = ode::rk4_trajectory(f, {Var(Tensor{1.0}), Var(Tensor{0.0})}, 0.0, 3.0, 60);
    REQUIRE(path.size() == 61);
    CHECK(path[30][0].value()[0] == doctest::Approx(std::cos(1.5)).epsilon(1e-6));
    CHECK(path[60][0].value()[0] == y[0].value()[0]);  // the same steps as rk4
}

TEST_CASE("ode::rk4: backpropagating through the solver passes gradcheck (initial state and parameters)") {
    Rng rng(3);
    // dz/dt = tanh(z W) + t b: the gradient flows into z0, W and b through all 4 stages of 5 steps.
    const auto solve = [](const std::vector<Var>& in) {
        const ode::Field f = [&](const ode::State& y, double t) {
            return ode::State{tanh(matmul(y[0], in[1])) + t * in[2]};
        };
        return ode::rk4(f, {in[0]}, 0.0, 1.0, 5)[0];
    };
    const GradcheckResult r = gradcheck(solve, {randn({3, 2}, rng), randn({2, 2}, rng), randn({2}, rng)});
    CHECK_MESSAGE(r.ok, r.report);
    // And backwards in time (how a flow's inverse runs).
    const auto solve_back = [](const std::vector<Var>& in) {
        const ode::Field f = [&](const ode::State& y, double t) { return ode::State{sin(y[0] * in[1]) * t}; };
        return sum(ode::rk4(f, {in[0]}, 1.0, 0.0, 4)[0]);
    };
    const GradcheckResult back = gradcheck(solve_back, {randn({2, 2}, rng), randn({2}, rng)});
    CHECK_MESSAGE(back.ok, back.report);
}

TEST_CASE("ode::rk4: bad arguments are refused with the reason") {
    const ode::State y0{Var(Tensor{1.0, 2.0})};
    CHECK_THROWS_WITH_AS(ode::rk4(decay, y0, 0.0, 1.0, 0), doctest::Contains("steps must be at least 1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ode::rk4(decay, y0, 0.0, INFINITY, 3), doctest::Contains("finite"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(ode::rk4(decay, {}, 0.0, 1.0, 3), doctest::Contains("empty"), std::invalid_argument);
    const ode::Field two = [](const ode::State& y, double) { return ode::State{y[0], y[0]}; };
    CHECK_THROWS_WITH_AS(ode::rk4(two, y0, 0.0, 1.0, 3), doctest::Contains("2 entries for a state of 1"),
                         std::invalid_argument);
    const ode::Field wrong = [](const ode::State&, double) { return ode::State{Var(Tensor{1.0})}; };
    CHECK_THROWS_WITH_AS(ode::rk4(wrong, y0, 0.0, 1.0, 3), doctest::Contains("entry 0 has shape"),
                         std::invalid_argument);
}
