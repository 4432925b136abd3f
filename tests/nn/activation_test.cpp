#include "nn/activation.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// Points on both sides of 0 and well away from it (finite differences must not straddle a kink).
const Tensor points{{-3.1, -0.7, -0.05}, {0.04, 0.9, 2.6}};

double sigma(double x) { return 1 / (1 + std::exp(-x)); }

void check_values(const std::function<Var(const Var&)>& f, double (*expected)(double)) {
    NoGrad no_grad;
    const Tensor y = f(Var(points)).value();
    for (std::size_t i = 0; i < points.numel(); ++i) {
        INFO("x = ", points[i]);
        CHECK(std::abs(y[i] - expected(points[i])) <= 1e-15 * (1 + std::abs(y[i])));
    }
}

void check_gradient(const std::function<Var(const Var&)>& f) {
    const GradcheckResult r = gradcheck([&](const std::vector<Var>& v) { return f(v[0]); }, {points.clone()});
    CHECK_MESSAGE(r.ok, r.report);
}

// J·v by the tangent rules (forward mode) against central differences, along a direction with no
// symmetry to hide behind.
void check_tangent(const std::function<Var(const Var&)>& f) {
    const Tensor v{{0.3, -1.2, 0.7}, {2.0, -0.4, 1.1}};
    const GradcheckResult r = jvpcheck([&](const std::vector<Var>& x) { return f(x[0]); }, {points.clone()}, {v});
    CHECK_MESSAGE(r.ok, r.report);
}

// d f / dx at x, through the tape.
double derivative(const std::function<Var(const Var&)>& f, double x) {
    Tape tape;
    TapeScope scope(tape);
    const Var v = tape.variable(Tensor{x});
    tape.backward(sum(f(v)));
    return tape.grad(v)[0];
}

}  // namespace

TEST_CASE("relu, leaky_relu, tanh, sigmoid and softplus: values and gradients on both branches") {
    check_values([](const Var& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; });
    check_values([](const Var& x) { return leaky_relu(x, 0.2); }, [](double x) { return x > 0 ? x : 0.2 * x; });
    check_values([](const Var& x) { return tanh(x); }, [](double x) { return std::tanh(x); });
    check_values([](const Var& x) { return sigmoid(x); }, [](double x) { return sigma(x); });
    check_values([](const Var& x) { return softplus(x); }, [](double x) { return std::log1p(std::exp(x)); });
    check_gradient([](const Var& x) { return relu(x); });
    check_gradient([](const Var& x) { return leaky_relu(x, 0.2); });
    check_gradient([](const Var& x) { return tanh(x); });
    check_gradient([](const Var& x) { return sigmoid(x); });
    check_gradient([](const Var& x) { return softplus(x); });
}

TEST_CASE("elu is x for x > 0 and α·(eˣ − 1) below; its gradient matches on both branches") {
    check_values([](const Var& x) { return elu(x); }, [](double x) { return x > 0 ? x : std::expm1(x); });
    check_values([](const Var& x) { return elu(x, 0.5); }, [](double x) { return x > 0 ? x : 0.5 * std::expm1(x); });
    check_gradient([](const Var& x) { return elu(x); });
    check_gradient([](const Var& x) { return elu(x, 0.5); });
    check_gradient([](const Var& x) { return elu(x, 2.5); });
    // The derivative on each branch, exactly: 1 above, α·eˣ below (the x ≤ 0 branch at the kink).
    CHECK(derivative([](const Var& x) { return elu(x, 0.5); }, 1.5) == 1.0);
    CHECK(std::abs(derivative([](const Var& x) { return elu(x, 0.5); }, -1.5) - 0.5 * std::exp(-1.5)) <= 1e-16);
    CHECK(derivative([](const Var& x) { return elu(x, 0.5); }, 0.0) == 0.5);
    // expm1 keeps the tiny negative values exact, where exp(x) − 1 would cancel.
    NoGrad no_grad;
    CHECK(elu(Var(Tensor{-1e-20}), 1.0).item() == -1e-20);
    CHECK(elu(Var(Tensor{-800.0}), 1.5).item() == -1.5);
}

TEST_CASE("silu is x·σ(x), with derivative σ(x)(1 + x(1 − σ(x)))") {
    check_values([](const Var& x) { return silu(x); }, [](double x) { return x * sigma(x); });
    check_gradient([](const Var& x) { return silu(x); });
    const double x = -1.3, s = sigma(x);
    CHECK(std::abs(derivative([](const Var& v) { return silu(v); }, x) - s * (1 + x * (1 - s))) <= 1e-16);
    // Stable far out on both sides: no overflow of e⁻ˣ, no NaN from inf·0.
    CHECK(derivative([](const Var& v) { return silu(v); }, -800.0) == 0.0);
    CHECK(derivative([](const Var& v) { return silu(v); }, 800.0) == 1.0);
    NoGrad no_grad;
    CHECK(silu(Var(Tensor{-800.0})).item() == 0.0);
    CHECK(silu(Var(Tensor{800.0})).item() == 800.0);
}

TEST_CASE("elu and silu: J·v by their tangent rules matches central differences on both branches") {
    check_tangent([](const Var& x) { return elu(x); });
    check_tangent([](const Var& x) { return elu(x, 2.5); });
    check_tangent([](const Var& x) { return silu(x); });
}

TEST_CASE("the activation layers apply their functions and have no parameters") {
    const Var x(points);
    NoGrad no_grad;
    CHECK(equal(ReLU()(x).value(), relu(x).value()));
    CHECK(equal(LeakyReLU(0.3)(x).value(), leaky_relu(x, 0.3).value()));
    CHECK(equal(Tanh()(x).value(), tanh(x).value()));
    CHECK(equal(Sigmoid()(x).value(), sigmoid(x).value()));
    CHECK(equal(Softplus()(x).value(), softplus(x).value()));
    CHECK(equal(ELU(0.7)(x).value(), elu(x, 0.7).value()));
    CHECK(equal(SiLU()(x).value(), silu(x).value()));
    CHECK(ReLU().parameter_count() == 0);
    CHECK(LeakyReLU().negative_slope() == 0.01);
    CHECK(LeakyReLU(0.2).name() == "LeakyReLU(negative_slope=0.2)");
    CHECK(ELU().name() == "ELU(alpha=1)");
    CHECK(SiLU().name() == "SiLU");
}

TEST_CASE("Activation selects the function and the layer") {
    const Var x(points);
    NoGrad no_grad;
    const ActivationOptions options{.negative_slope = 0.25, .alpha = 0.5};
    for (const Activation kind : {Activation::relu, Activation::leaky_relu, Activation::tanh, Activation::sigmoid,
                                  Activation::softplus, Activation::elu, Activation::silu}) {
        INFO(to_string(kind));
        const std::unique_ptr<Layer> layer = make_activation(kind, options);
        CHECK(equal(layer->forward(x).value(), activate(x, kind, options).value()));
    }
    CHECK(equal(activate(x, Activation::leaky_relu, options).value(), leaky_relu(x, 0.25).value()));
    CHECK(equal(activate(x, Activation::elu, options).value(), elu(x, 0.5).value()));
    CHECK(make_activation(Activation::elu, options)->name() == "ELU(alpha=0.5)");
    CHECK(make_activation(Activation::tanh)->name() == "Tanh");
    CHECK(to_string(Activation::silu) == "silu");
}

TEST_CASE("non-finite activation parameters are rejected") {
    CHECK_THROWS_WITH_AS(ELU{NAN}, "ELU: alpha must be finite, got nan", std::invalid_argument);
    CHECK_THROWS_WITH_AS(LeakyReLU{INFINITY}, "LeakyReLU: negative_slope must be finite, got inf", std::invalid_argument);
    CHECK_THROWS_WITH_AS(elu(Var(points), -INFINITY), "elu: alpha must be finite, got -inf", std::invalid_argument);
}
