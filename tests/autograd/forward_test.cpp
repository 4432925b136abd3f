// Forward mode (autograd/forward.hpp): tangents carried beside recorded values, J·v in one forward
// pass, tangents through the recorded backward (forward-over-reverse), and the rules of what may
// cross a forward level.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/forward.hpp"
#include "autograd/functional.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;

namespace {
// A map ℝ⁴ → ℝ³ with a matmul, a broadcast add, a nonlinearity and a reduction.
struct Net {
    Tensor w, b;
    Var operator()(const Var& x) const {
        const Var h = tanh(matmul(reshape(x, Shape{1, 4}), Var(w)) + Var(b));
        return reshape(h * sum(x), Shape{3});
    }
};
Net make_net() {
    Rng rng(3);
    return {randn(Shape{4, 3}, rng), randn(Shape{3}, rng)};
}
}  // namespace

TEST_CASE("jvp is one forward pass: the tape holds f's nodes once and no backward, and J·v = J v") {
    const Net f = make_net();
    const Tensor x0 = Tensor{0.3, -0.7, 1.1, 0.2};
    const Tensor v = Tensor{1.0, 0.5, -2.0, 0.25};
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(x0.clone());
    const std::size_t before = tape.size();
    (void)f(x);
    const std::size_t f_nodes = tape.size() - before;
    const ValueAndProduct r = jvp(f, x, v);
    CHECK(tape.size() - before == 2 * f_nodes);  // f once more; no recorded vjp, no reverse sweep
    CHECK_FALSE(tape.forward_open());           // the level closed with jvp
    // Against the reverse-mode Jacobian (one VJP per row), applied to v by hand.
    const Tensor J = jacobian(f, x0, JacobianMode::reverse);
    for (std::size_t i = 0; i < 3; ++i) {
        double jv = 0;
        for (std::size_t j = 0; j < 4; ++j) jv += J[i * 4 + j] * v[j];
        CHECK(r.product.value()[i] == doctest::Approx(jv).epsilon(1e-14));
    }
    // jacobian by forward mode (one forward pass per column) is the same matrix.
    CHECK(max_abs_diff(jacobian(f, x0, JacobianMode::forward), J) <= 1e-15);
    // With create_graph the product is differentiable (the double-vjp construction) and equal.
    const ValueAndProduct d = jvp(f, x, v, {.create_graph = true});
    CHECK(d.product.requires_grad());
    CHECK(max_abs_diff(d.product.value(), r.product.value()) <= 1e-14);
}

TEST_CASE("ForwardLevel: tangents per value, outer Vars are constants, dropped when the level closes") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.5, 2.0});
    const Var w = exp(x);  // recorded before the level: a constant of what follows
    {
        ForwardLevel level(tape);
        level.seed(x, Tensor{1.0, -1.0});
        const Var y = x * w;  // ẏ = ẋ·w (w carries no tangent)
        const Var z = sin(x);
        CHECK(max_abs_diff(level.tangent(y), Tensor{std::exp(0.5), -std::exp(2.0)}) <= 1e-15);
        CHECK(max_abs_diff(level.tangent(z), Tensor{std::cos(0.5), -std::cos(2.0)}) <= 1e-15);
        CHECK(max_abs_diff(level.tangent(w), Tensor{0.0, 0.0}) == 0.0);
        CHECK(max_abs_diff(level.tangent(Var(Tensor{3.0})), Tensor{0.0}) == 0.0);
        CHECK(tape.has_tangent(y.index()));
        CHECK_THROWS_WITH_AS(level.seed(x, Tensor{1.0}), doctest::Contains("the tangent has shape [1]"),
                             std::invalid_argument);
    }
    CHECK_FALSE(tape.forward_open());
    CHECK_FALSE(tape.has_tangent(x.index()));
    // After the level, the same ops record no tangents (and cost nothing extra).
    const Var after = sin(x);
    CHECK_FALSE(tape.has_tangent(after.index()));
}

TEST_CASE("Forward-over-reverse: tangents flow through the recorded backward to give H·v") {
    const UnaryVarFunction s = [](const Var& x) { return sum(exp(x * 0.5) * sin(x)) + square(sum(x * x)); };
    const Tensor x0 = Tensor{0.2, -0.4, 0.9};
    const Tensor v = Tensor{1.0, 2.0, -0.5};
    const Tensor H = hessian(s, x0);
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(x0.clone());
    ForwardLevel level(tape);
    level.seed(x, v);
    const Var g = grad(s(x), {x}, {.create_graph = true})[0];
    const Tensor hv = level.tangent(g);
    for (std::size_t i = 0; i < 3; ++i) {
        double expected = 0;
        for (std::size_t j = 0; j < 3; ++j) expected += H[i * 3 + j] * v[j];
        CHECK(hv[i] == doctest::Approx(expected).epsilon(1e-13));
    }
}

TEST_CASE("What may cross a forward level: each misuse is refused with a clear error") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.5, 2.0});
    const Tensor v = Tensor{1.0, 1.0};
    SUBCASE("levels do not nest on one tape") {
        const UnaryVarFunction inner = [&](const Var& z) { return jvp([](const Var& u) { return sin(u); }, z, v).product; };
        CHECK_THROWS_WITH_AS(jvp(inner, x, v), doctest::Contains("a forward level is already open"), std::logic_error);
        CHECK_FALSE(tape.forward_open());  // the outer level closed on the way out
        // A level on another tape is independent: jacobian's private tape inside a jvp.
        const UnaryVarFunction with_jacobian = [&](const Var& z) {
            const Tensor J = jacobian([](const Var& u) { return square(u); }, z.value(), JacobianMode::forward);
            return z * Var(Tensor{J[0], J[3]});  // diag(2z) = diag(1, 4) at z = (0.5, 2)
        };
        CHECK(max_abs_diff(jvp(with_jacobian, x, v).product.value(), Tensor{1.0, 4.0}) == 0.0);
    }
    SUBCASE("a first-order reverse sweep would drop the tangent") {
        const UnaryVarFunction first_order = [](const Var& z) { return grad(sum(square(z)), {z})[0]; };
        CHECK_THROWS_WITH_AS(jvp(first_order, x, v), doctest::Contains("carries a tangent of the open forward level"),
                             std::logic_error);
        // The recorded gradient carries it: ∇Σz² = 2z, so the tangent is 2v.
        const UnaryVarFunction recorded = [](const Var& z) { return grad(sum(square(z)), {z}, {.create_graph = true})[0]; };
        CHECK(max_abs_diff(jvp(recorded, x, v).product.value(), Tensor{2.0, 2.0}) == 0.0);
    }
    SUBCASE("an op under NoGrad would drop the tangent") {
        const UnaryVarFunction no_grad = [](const Var& z) {
            NoGrad off;
            return exp(z);
        };
        CHECK_THROWS_WITH_AS(jvp(no_grad, x, v), doctest::Contains("exp: an input carries a tangent"), std::logic_error);
        // Under NoGrad outside, jvp still records f (the tangents live on the tape).
        NoGrad outside;
        CHECK(max_abs_diff(jvp([](const Var& z) { return z * z; }, x, v).product.value(), Tensor{1.0, 4.0}) == 0.0);
    }
    SUBCASE("an op recorded without a tangent rule") {
        const UnaryVarFunction custom = [](const Var& z) {
            return record("my_exp", tapeflow::exp(z.value()), {z},
                          [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), ctx.value())); });
        };
        CHECK_THROWS_WITH_AS(jvp(custom, x, v), doctest::Contains("my_exp: forward mode"), std::logic_error);
        CHECK(grad(sum(custom(x)), {x})[0].value()[0] == doctest::Approx(std::exp(0.5)));  // reverse mode is fine
    }
    SUBCASE("grad with an input of a later level than the output") {
        const Var y = sum(square(x));
        const Var g = grad(y, {x}, {.create_graph = true})[0];
        CHECK_THROWS_WITH_AS(grad(y, {g}), doctest::Contains("was recorded after the output"), std::logic_error);
        CHECK_THROWS_WITH_AS(grad(y, {g}, {.create_graph = true}), doctest::Contains("input 0"), std::logic_error);
        CHECK(max_abs_diff(grad(sum(g), {x})[0].value(), Tensor{2.0, 2.0}) == 0.0);  // the right way round
    }
}

TEST_CASE("Tangents of relu, abs and clamp on both sides of their kinks, against central differences") {
    const VarFunction kinked = [](const std::vector<Var>& v) {
        return concat({relu(v[0]), abs(v[0]), clamp(v[0] + 0.9, -0.9, 0.9)}, 0);
    };
    for (const double side : {-1.0, 1.0}) {
        INFO("side " << side);
        const Tensor x = Tensor{1e-3 * side, 2e-3 * side};  // just left or just right of 0 (and of 0.9)
        const GradcheckResult r = jvpcheck(kinked, {x}, {Tensor{1.0, -0.5}});
        INFO(r.report);
        CHECK(r.ok);
        // The one-sided values the backward uses too: relu′ = [x > 0], abs′ = sign x, clamp′ = [inside].
        Tape tape;
        TapeScope scope(tape);
        const Var xv = tape.variable(x.clone());
        const Tensor jv = jvp([&](const Var& z) { return kinked({z}); }, xv, Tensor{1.0, -0.5}).product.value();
        const double relu_slope = side > 0 ? 1.0 : 0.0, clamp_slope = side > 0 ? 0.0 : 1.0;
        CHECK(max_abs_diff(jv, Tensor{relu_slope, -0.5 * relu_slope, side, -0.5 * side, clamp_slope, -0.5 * clamp_slope}) == 0.0);
    }
}
