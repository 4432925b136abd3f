// gradcheck must pass for correct ops and fail, pointing at the culprit, for wrong ones: a wrong
// derivative, a backward rule that is not re-entrant, a rule that adds a constant. Also: checking
// Parameters, the Jacobian of a linear map, and the functional grad().
#include "autograd/gradcheck.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

// x², with a wrong derivative: x instead of 2x.
Var bad_square(const Var& x) {
    return record("bad_square", tapeflow::square(x.value()), {x}, [](Backward& ctx) {
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), ctx.input(0)));
    });
}

// The identity, whose backward drifts by one part in 10⁹ per call: right to finite-difference
// accuracy, but a second backward pass gives different numbers.
Var drifting_identity(const Var& x) {
    return record("drifting_identity", x.value().clone(), {x}, [](Backward& ctx) {
        static int calls = 0;
        ++calls;
        ctx.accumulate(0, ctx.grad() * (1.0 + 1e-9 * calls));
    });
}

// The identity, whose backward adds a constant too small for the finite-difference comparison.
Var offset_identity(const Var& x) {
    return record("offset_identity", x.value().clone(), {x},
                  [](Backward& ctx) { ctx.accumulate(0, ctx.grad() + 1e-9); });
}

// The identity, whose backward produces NaN.
Var nan_identity(const Var& x) {
    return record("nan_identity", x.value().clone(), {x}, [](Backward& ctx) {
        ctx.accumulate(0, ctx.grad() * std::numeric_limits<double>::quiet_NaN());
    });
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("gradcheck passes for correct ops and reports where it looked") {
    Rng rng(51);
    const GradcheckResult r = gradcheck([](const Vars& v) { return tanh(v[0]) * exp(v[1]) + square(v[0]); },
                                        {randn(Shape{2, 3}, rng), randn(Shape{3}, rng)});
    INFO(r.report);
    CHECK(r.ok);
    CHECK(static_cast<bool>(r));
    CHECK(r.report.rfind("gradcheck passed", 0) == 0);
    CHECK_FALSE(contains(r.report, "recorded tape"));
    CHECK(r.error <= r.tolerance);

    // A function that ignores its input has a zero Jacobian both ways.
    CHECK_GRADCHECK([](const Vars&) { return Var(Tensor{1.0, 2.0}); }, {Tensor{0.5}});
}

TEST_CASE("gradcheck records on a private tape and leaves the caller's alone") {
    Tape outer;
    TapeScope scope(outer);
    const Var x = outer.variable(Tensor{1.0});
    (void)exp(x);
    CHECK_GRADCHECK([](const Vars& v) { return sin(v[0]); }, {Tensor{0.3, 0.4}});
    CHECK(&Tape::current() == &outer);
    CHECK(outer.size() == 2);
    CHECK(grad_enabled());
}

TEST_CASE("gradcheck fails for a wrong derivative and names the input, element, values and op") {
    const GradcheckResult r = gradcheck([](const Vars& v) { return bad_square(v[0]); }, {Tensor{1.0, 2.0, -3.0}});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(static_cast<bool>(r));
    // The worst element is the largest |x|: analytic x = −3 against numeric 2x = −6.
    CHECK(r.input == 0);
    CHECK(r.input_element == 2);
    CHECK(r.output_element == 2);
    CHECK(r.analytic == -3.0);
    CHECK(std::abs(r.numeric - -6.0) <= 1e-8);
    CHECK(r.error > r.tolerance);
    CHECK(r.report.rfind("gradcheck FAILED", 0) == 0);
    CHECK(contains(r.report, "input 0 element 2"));
    CHECK(contains(r.report, "analytic -3"));
    CHECK(contains(r.report, "numeric -6"));
    CHECK(contains(r.report, "recorded tape"));
    CHECK(contains(r.report, "bad_square"));

    // With two inputs, the report points at the one behind the wrong rule.
    const GradcheckResult r2 = gradcheck([](const Vars& v) { return v[0] * bad_square(v[1]); },
                                         {Tensor{0.5, 2.0}, Tensor{1.5, -1.0}});
    INFO(r2.report);
    CHECK_FALSE(r2.ok);
    CHECK(r2.input == 1);
    CHECK(contains(r2.report, "input 1 element"));
}

TEST_CASE("gradcheck fails for a backward rule that is not re-entrant") {
    const auto f = [](const Vars& v) { return drifting_identity(v[0]) * 2.0; };
    const GradcheckResult r = gradcheck(f, {Tensor{0.5, -1.0}});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK(r.error <= r.tolerance);  // the values themselves are right
    CHECK(contains(r.report, "not re-entrant"));
    CHECK(contains(r.report, "input 0"));
    CHECK(contains(r.report, "drifting_identity"));
    CHECK(gradcheck(f, {Tensor{0.5, -1.0}}, {.check_reentrant = false}).ok);
}

TEST_CASE("gradcheck fails for a backward rule that turns a zero upstream gradient into non-zero") {
    const auto f = [](const Vars& v) { return offset_identity(v[0]); };
    const GradcheckResult r = gradcheck(f, {Tensor{0.5, -1.0}});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.report, "zero upstream"));
    CHECK(contains(r.report, "offset_identity"));
    CHECK(gradcheck(f, {Tensor{0.5, -1.0}}, {.check_zero_upstream = false}).ok);
}

TEST_CASE("gradcheck never passes a NaN gradient") {
    const GradcheckResult r = gradcheck([](const Vars& v) { return nan_identity(v[0]); }, {Tensor{0.5}},
                                        {.check_reentrant = false});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.report, "nan"));
}

TEST_CASE("gradcheck checks Parameters and leaves their values and gradients exactly as they were") {
    Rng rng(52);
    Parameter w(randn(Shape{2, 3}, rng));
    Parameter b(randn(Shape{3}, rng));
    w.grad = randn(Shape{2, 3}, rng);
    b.grad = randn(Shape{3}, rng);
    const Tensor w_value = w.value.clone(), b_value = b.value.clone();
    const Tensor w_grad = w.grad.clone(), b_grad = b.grad.clone();
    const Tensor w_grad_handle = w.grad;  // a caller's handle on the gradient must not be written to

    const auto layer = [&](const Vars& v) { return tanh(matmul(v[0], w.var()) + b.var()); };
    CHECK_GRADCHECK(layer, {randn(Shape{4, 2}, rng)}, {.parameters = {&w, &b}});
    CHECK(equal(w.value, w_value));
    CHECK(equal(b.value, b_value));
    CHECK(equal(w.grad, w_grad));
    CHECK(equal(b.grad, b_grad));
    CHECK(w.grad.shares_storage_with(w_grad_handle));
    CHECK(equal(w_grad_handle, w_grad));

    // A wrong rule on a parameter's path is caught, and named as a parameter.
    const auto bad = [&](const Vars& v) { return v[0] * bad_square(b.var()); };
    const GradcheckResult r = gradcheck(bad, {randn(Shape{3}, rng)}, {.parameters = {&w, &b}});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK(r.input == 2);  // inputs first, then parameters in the order given
    CHECK(contains(r.report, "parameter 1 element"));
    CHECK(equal(b.value, b_value));
    CHECK(equal(b.grad, b_grad));

    // A parameter whose gradient was never set up is fine too, and stays unset.
    Parameter fresh;
    fresh.value = Tensor{0.5, -0.5};
    CHECK_GRADCHECK([&](const Vars& v) { return v[0] * fresh.var(); }, {Tensor{1.0, 2.0}}, {.parameters = {&fresh}});
    CHECK_FALSE(fresh.grad.defined());
}

TEST_CASE("jacobian of a linear map is its matrix") {
    const Tensor A{{1.0, -2.0}, {3.5, 4.0}, {-5.0, 0.25}};
    const Tensor J = jacobian([&A](const Var& x) { return matmul(Var(A), x); }, Tensor(Shape{2, 1}, {0.3, -0.7}));
    CHECK(equal(J, A));

    // Elementwise: diagonal, 2x for x².
    const Tensor x{0.5, -1.0, 2.0};
    const Tensor Js = jacobian([](const Var& v) { return square(v); }, x);
    CHECK(equal(Js, Tensor{{1.0, 0.0, 0.0}, {0.0, -2.0, 0.0}, {0.0, 0.0, 4.0}}));
    // A dense one: f(v) = S·v with S = Σ_j v_j e^{v_j}, so J_ij = δ_ij S + v_i (1 + v_j) e^{v_j}.
    const Tensor Jd = jacobian([](const Var& v) { return sum(exp(v) * v) * v; }, x);
    double S = 0;
    for (std::size_t j = 0; j < 3; ++j) S += x[j] * std::exp(x[j]);
    Tensor expected = Tensor::zeros(Shape{3, 3});
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) expected[i * 3 + j] = (i == j ? S : 0.0) + x[i] * (1 + x[j]) * std::exp(x[j]);
    CHECK(max_abs_diff(Jd, expected) <= 1e-14);

    // Independent of x: zeros.
    CHECK(equal(jacobian([](const Var&) { return Var(Tensor{1.0, 2.0}); }, x), Tensor::zeros(Shape{2, 3})));
}

TEST_CASE("grad() matches backward and leaves Parameter gradients alone") {
    Tape tape;
    TapeScope scope(tape);
    Parameter p(Tensor{0.5, -1.0});
    p.grad = Tensor{10.0, 20.0};
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var y = tape.variable(Tensor::scalar(3.0));
    const Var unused = tape.variable(Tensor{4.0});
    const Var constant(Tensor{{1.0, 2.0}});
    const Var loss = sum(x * x * p.var()) * y + sum(exp(x));

    std::vector<Tensor> g;
    for (const Var& v : grad(loss, {x, y, unused, constant})) g.push_back(v.value());
    REQUIRE(g.size() == 4);
    CHECK(equal(p.grad, Tensor{10.0, 20.0}));
    CHECK(equal(g[2], Tensor{0.0}));
    CHECK(equal(g[3], Tensor::zeros(Shape{1, 2})));

    tape.backward(loss);
    CHECK(equal(g[0], x.grad()));
    CHECK(equal(g[1], y.grad()));
    // ∂/∂x = 2xpy + eˣ, ∂/∂y = Σ x²p.
    CHECK(std::abs(g[0][0] - (2 * 1.0 * 0.5 * 3.0 + std::exp(1.0))) <= 1e-14);
    CHECK(std::abs(g[1].item() - (0.5 - 4.0)) <= 1e-15);
    CHECK(equal(p.grad, Tensor{13.0, 32.0}));  // backward does add into it: 10 + x²y, 20 + x²y

    CHECK_THROWS_WITH_AS(grad(constant, {x}), doctest::Contains("does not depend"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(grad(x * 2.0, {x}), doctest::Contains("[2]"), std::invalid_argument);
}
