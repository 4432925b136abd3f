// gradgradcheck and jvpcheck over every differentiable op (second derivatives and J·v against finite
// differences), the functional API (vjp, jvp, jacobian in each mode, hvp both ways, hessian), and the
// custom-op and anomaly behaviour of the recorded backward.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/anomaly.hpp"
#include "autograd/conv.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/functional.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

struct OpCase {
    const char* name;
    VarFunction f;
    std::vector<Tensor> inputs;
};

// Every op with a derivative, at points away from its kinks (relu, abs, clamp, max, minimum are also
// tested on both sides of the kink in functional_test.cpp) and inside its domain.
std::vector<OpCase> op_table() {
    Rng rng(21);
    const Tensor a = randn(Shape{2, 3}, rng);
    const Tensor b = randn(Shape{2, 3}, rng);
    const Tensor pos = map(randn(Shape{2, 3}, rng), [](double v) { return 0.5 + std::abs(v); });
    const Tensor row = randn(Shape{3}, rng);
    const Tensor m = randn(Shape{3, 2}, rng);
    const Tensor batch = randn(Shape{2, 2, 3}, rng);
    const Tensor idx = Tensor{{2.0, 0.0}, {1.0, 1.0}};
    const Tensor image = randn(Shape{1, 2, 3, 3}, rng);
    const Tensor kernel = randn(Shape{2, 2, 3, 3}, rng);
    const Tensor bias = randn(Shape{2}, rng);
    return {
        {"add (broadcast)", [](const Vars& v) { return square(v[0] + v[1]); }, {a, row}},
        {"sub (broadcast)", [](const Vars& v) { return square(v[0] - v[1]); }, {a, row}},
        {"mul", [](const Vars& v) { return v[0] * v[1]; }, {a, b}},
        {"div", [](const Vars& v) { return v[0] / v[1]; }, {a, pos}},
        {"minimum", [](const Vars& v) { return minimum(v[0], v[1]) * v[0]; }, {a, b}},
        {"maximum", [](const Vars& v) { return maximum(v[0], v[1]) * v[1]; }, {a, b}},
        {"scalar ops", [](const Vars& v) { return (2.0 - v[0]) * (v[0] + 1.0) / 3.0 + 2.0 / v[1] - v[1] * 0.5; }, {a, pos}},
        {"neg", [](const Vars& v) { return -v[0] * v[0]; }, {a}},
        {"exp", [](const Vars& v) { return exp(v[0]); }, {a}},
        {"log", [](const Vars& v) { return log(v[0]); }, {pos}},
        {"log1p", [](const Vars& v) { return log1p(v[0]); }, {pos}},
        {"expm1", [](const Vars& v) { return expm1(v[0]); }, {a}},
        {"sqrt", [](const Vars& v) { return sqrt(v[0]); }, {pos}},
        {"square", [](const Vars& v) { return square(v[0]); }, {a}},
        {"pow", [](const Vars& v) { return pow(v[0], 2.5); }, {pos}},
        {"abs", [](const Vars& v) { return abs(v[0]) * v[0]; }, {a}},
        {"sin", [](const Vars& v) { return sin(v[0]); }, {a}},
        {"cos", [](const Vars& v) { return cos(v[0]); }, {a}},
        {"tanh", [](const Vars& v) { return tanh(v[0]); }, {a}},
        {"sigmoid", [](const Vars& v) { return sigmoid(v[0]); }, {a}},
        {"relu", [](const Vars& v) { return relu(v[0]) * v[0]; }, {a}},
        {"leaky_relu", [](const Vars& v) { return leaky_relu(v[0], 0.1) * v[0]; }, {a}},
        {"softplus", [](const Vars& v) { return softplus(v[0]); }, {a}},
        {"log_sigmoid", [](const Vars& v) { return log_sigmoid(v[0]); }, {a}},
        {"clamp", [](const Vars& v) { return clamp(v[0], -0.9, 0.9) * v[0]; }, {a}},
        {"where", [](const Vars& v) { return where(Tensor{{1.0, 0.0, 1.0}, {0.0, 1.0, 0.0}}, exp(v[0]), square(v[1])); }, {a, b}},
        {"sum", [](const Vars& v) { return square(sum(v[0])); }, {a}},
        {"sum axis", [](const Vars& v) { return square(sum(v[0], 1)); }, {a}},
        {"sum_to", [](const Vars& v) { return square(sum_to(square(v[0]), Shape{3})); }, {a}},
        {"mean", [](const Vars& v) { return square(mean(v[0])) * v[0]; }, {a}},
        {"mean axis", [](const Vars& v) { return square(mean(v[0], 0, true)) * v[0]; }, {a}},
        {"max", [](const Vars& v) { return square(max(v[0])); }, {a}},
        {"max axis", [](const Vars& v) { return square(max(v[0], 1)); }, {a}},
        {"min", [](const Vars& v) { return square(min(v[0])); }, {a}},
        {"min axis", [](const Vars& v) { return square(min(v[0], 0)); }, {a}},
        {"logsumexp", [](const Vars& v) { return logsumexp(v[0]); }, {a}},
        {"logsumexp axis", [](const Vars& v) { return logsumexp(v[0], 1); }, {a}},
        {"softmax", [](const Vars& v) { return softmax(v[0], 1); }, {a}},
        {"log_softmax", [](const Vars& v) { return log_softmax(v[0], 0); }, {a}},
        {"cumsum", [](const Vars& v) { return square(cumsum(v[0], 1)); }, {a}},
        {"norm", [](const Vars& v) { return norm(v[0], 1); }, {a}},
        {"log_add_exp", [](const Vars& v) { return log_add_exp(v[0], v[1]); }, {a, b}},
        {"matmul", [](const Vars& v) { return square(matmul(v[0], v[1])); }, {a, m}},
        {"matmul batched", [](const Vars& v) { return square(matmul(v[0], v[1])); }, {batch, m}},
        {"matmul_tn", [](const Vars& v) { return square(matmul_tn(v[0], v[1])); }, {a, b}},
        {"matmul_nt", [](const Vars& v) { return square(matmul_nt(v[0], v[1])); }, {a, b}},
        {"reshape", [](const Vars& v) { return square(reshape(v[0], Shape{3, 2})); }, {a}},
        {"transpose", [](const Vars& v) { return square(transpose(v[0])) * transpose(v[0]); }, {a}},
        {"permute", [](const Vars& v) { return square(permute(v[0], {2, 0, 1})); }, {batch}},
        {"narrow", [](const Vars& v) { return square(narrow(v[0], 1, 1, 2)); }, {a}},
        {"concat", [](const Vars& v) { return square(concat({v[0], v[1] * v[0]}, 0)); }, {a, b}},
        {"index_select", [](const Vars& v) { return square(index_select(v[0], 1, {2, 0, 2})); }, {a}},
        {"take_along_axis", [idx](const Vars& v) { return square(take_along_axis(v[0], idx, 1)); }, {a}},
        {"broadcast_to", [](const Vars& v) { return square(broadcast_to(v[0], Shape{2, 3})); }, {row}},
        // The convolution in each argument (its backward products are recorded ops, autograd/conv.cpp);
        // squared so that the second derivative in every argument is nonzero.
        {"conv2d input/weight/bias", [](const Vars& v) { return square(conv2d(v[0], v[1], v[2])); }, {image, kernel, bias}},
        {"conv2d input·weight", [](const Vars& v) { return conv2d(v[0], v[1]) * conv2d(v[0], v[1]); }, {image, kernel}},
        {"pad2d", [](const Vars& v) { return square(pad2d(v[0], 1, 0, 2, 1)); }, {image}},
        {"sum_per_channel", [](const Vars& v) { return square(sum_per_channel(v[0] * v[0])); }, {image}},
    };
}

}  // namespace

TEST_CASE("gradgradcheck and jvpcheck pass for every op of the op table") {
    GradcheckOptions o;
    o.atol = 1e-6;
    for (const OpCase& c : op_table()) {
        INFO(c.name);
        const GradcheckResult second = gradgradcheck(c.f, c.inputs, o);
        INFO(second.report);
        CHECK(second.ok);
        std::vector<Tensor> tangents;
        for (std::size_t k = 0; k < c.inputs.size(); ++k)
            tangents.push_back(map(c.inputs[k], [k](double v) { return std::cos(3 * v + static_cast<double>(k)); }));
        const GradcheckResult forward = jvpcheck(c.f, c.inputs, tangents, o);
        INFO(forward.report);
        CHECK(forward.ok);
    }
}

TEST_CASE("gradgradcheck and jvpcheck catch a wrong second derivative and a wrong first one") {
    // sin with the right first derivative written so its second derivative is wrong: cos is recorded
    // as a constant (computed from values), so d/dx (g·cos x) misses −g·sin x.
    const VarFunction wrong_second = [](const Vars& v) {
        return record("sin_const_cos", tapeflow::sin(v[0].value()), {v[0]}, [](auto& ctx) {
            ctx.accumulate(0, mul(ctx.grad(), ctx.constant(tapeflow::cos(ctx.input_value(0)))));
        });
    };
    const Tensor x = Tensor{0.3, 1.1};
    CHECK(gradcheck(wrong_second, {x}).ok);  // first order is right
    CHECK_FALSE(gradgradcheck(wrong_second, {x}).ok);
    // A wrong tangent rule (ẏ = 2 cos x · ẋ) beside a right backward: jvpcheck, which runs the tangent
    // rules (true forward mode), fails, while gradcheck, which runs only the backward, passes.
    const auto sin_with_tangent = [](double factor) {
        return VarFunction([factor](const Vars& v) {
            return record("sin_tangent", tapeflow::sin(v[0].value()), {v[0]},
                          [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), cos(ctx.input(0)))); },
                          [factor](const Forward& t) { return t.tangent(0) * tapeflow::cos(t.input(0)) * factor; });
        });
    };
    CHECK(gradcheck(sin_with_tangent(2.0), {x}).ok);
    const GradcheckResult wrong = jvpcheck(sin_with_tangent(2.0), {x}, {Tensor{1.0, -0.5}});
    INFO(wrong.report);
    CHECK_FALSE(wrong.ok);
    CHECK(wrong.report.find("jvpcheck FAILED: worst at output element") != std::string::npos);
    CHECK(jvpcheck(sin_with_tangent(1.0), {x}, {Tensor{1.0, -0.5}}).ok);
    CHECK_THROWS_WITH_AS(jvpcheck(sin_with_tangent(1.0), {x}, {}), doctest::Contains("0 tangents for 1 inputs"),
                         std::invalid_argument);
}

TEST_CASE("Custom ops: a Tensor-only rule is refused for second order, a generic one passes") {
    const VarFunction tensor_only = [](const Vars& v) {
        return record("cube_tensor_rule", tapeflow::pow(v[0].value(), 3.0), {v[0]}, [](Backward& ctx) {
            ctx.accumulate(0, map(ctx.grad(), ctx.input(0), [](double g, double t) { return 3 * t * t * g; }));
        });
    };
    const Tensor x = Tensor{0.4, -0.8};
    CHECK(gradcheck(tensor_only, {x}).ok);
    const GradcheckResult r = gradgradcheck(tensor_only, {x});
    CHECK_FALSE(r.ok);
    CHECK(r.report.find("op cube_tensor_rule has no differentiable backward") != std::string::npos);
    // Forward mode needs a tangent rule, which this op lacks: refused, naming the op and what is missing.
    const GradcheckResult f = jvpcheck(tensor_only, {x}, {Tensor{1.0, 1.0}});
    CHECK_FALSE(f.ok);
    CHECK(f.report.find("cube_tensor_rule: forward mode") != std::string::npos);
    CHECK(f.report.find("recorded without a tangent rule") != std::string::npos);

    // A struct with both overloads: a fast Tensor rule and a differentiable one.
    struct CubeRule {
        void operator()(Backward& ctx) const {
            ctx.accumulate(0, map(ctx.grad(), ctx.input(0), [](double g, double t) { return 3 * t * t * g; }));
        }
        void operator()(VarBackward& ctx) const { ctx.accumulate(0, mul(ctx.grad(), square(ctx.input(0)) * 3.0)); }
    };
    const VarFunction both = [](const Vars& v) {
        return record("cube_two_rules", tapeflow::pow(v[0].value(), 3.0), {v[0]}, CubeRule{});
    };
    CHECK(gradgradcheck(both, {x}).ok);
    // Without a tangent rule it is refused by forward mode …
    CHECK_FALSE(jvpcheck(both, {x}, {Tensor{1.0, -2.0}}).ok);
    // … and with one (ẏ = 3x²·ẋ) it passes, also inside hvp by forward-over-reverse: the op's tangent
    // rule runs in the forward pass, and the tangent then flows through its recorded backward (mul,
    // square, mul_scalar), so the product is ∇²(Σx³)·v = 6x ⊙ v.
    const VarFunction with_tangent = [](const Vars& v) {
        return record("cube_with_tangent", tapeflow::pow(v[0].value(), 3.0), {v[0]}, CubeRule{},
                      [](const Forward& t) { return t.tangent(0) * tapeflow::square(t.input(0)) * 3.0; });
    };
    CHECK(jvpcheck(with_tangent, {x}, {Tensor{1.0, -2.0}}).ok);
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    const Tensor hv =
        hvp([&](const Var& z) { return sum(with_tangent({z})); }, xv, Tensor{1.0, -2.0}, HvpMode::forward_over_reverse)
            .value();
    CHECK(hv[0] == doctest::Approx(6 * 0.4 * 1.0).epsilon(1e-14));   // (x³)'' = 6x
    CHECK(hv[1] == doctest::Approx(6 * -0.8 * -2.0).epsilon(1e-14));
}

TEST_CASE("vjp, jvp, jacobian in each mode, hvp both ways and hessian agree with each other") {
    Rng rng(5);
    const Tensor x0 = randn(Shape{3}, rng);
    const Tensor w = randn(Shape{3, 4}, rng);
    // A tall map ℝ³ → ℝ⁴ (forward mode takes fewer products) and a scalar function.
    const UnaryVarFunction f = [&](const Var& x) { return tanh(matmul(reshape(x, Shape{1, 3}), Var(w))) * 2.0; };
    const UnaryVarFunction s = [](const Var& x) { return sum(exp(x * 0.5) * sin(x)) + square(sum(x)); };
    const Tensor Jf = jacobian(f, x0, JacobianMode::forward);
    const Tensor Jr = jacobian(f, x0, JacobianMode::reverse);
    const Tensor Ja = jacobian(f, x0, JacobianMode::automatic);
    CHECK(Jf.shape() == Shape{1, 4, 3});
    CHECK(max_abs_diff(Jf, Jr) <= 1e-14);
    CHECK(max_abs_diff(Ja, Jr) <= 1e-14);
    // Against the first-order full Jacobian of gradcheck.hpp ([4, 3] flat).
    CHECK(max_abs_diff(Jr.reshape(Shape{4, 3}), jacobian(f, x0)) == 0.0);

    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(x0.clone());
    const Tensor v = Tensor{0.5, -1.0, 2.0};
    const Tensor u = Tensor{{1.0, -0.5, 0.25, 2.0}};
    const ValueAndProduct fwd = jvp(f, x, v);
    const ValueAndProduct rev = vjp(f, x, u);
    // uᵀ(Jv) = (Jᵀu)ᵀv: both products of the same J.
    CHECK(sum(fwd.product * Var(u)).item() == doctest::Approx(sum(rev.product * Var(v)).item()).epsilon(1e-13));
    CHECK(max_abs_diff(fwd.value.value(), rev.value.value()) == 0.0);

    const Tensor H = hessian(s, x0);
    CHECK(H.shape() == Shape{3, 3});
    const Tensor hr = hvp(s, x, v, HvpMode::reverse_over_reverse).value();
    const Tensor hf = hvp(s, x, v, HvpMode::forward_over_reverse).value();
    for (std::size_t i = 0; i < 3; ++i) {
        double expected = 0;
        for (std::size_t j = 0; j < 3; ++j) expected += H[i * 3 + j] * v[j];
        CHECK(hr[i] == doctest::Approx(expected).epsilon(1e-13));
        CHECK(hf[i] == doctest::Approx(expected).epsilon(1e-13));
    }
    // And H against finite differences of the gradient.
    const GradcheckResult second = gradgradcheck([&](const Vars& in) { return s(in[0]); }, {x0});
    INFO(second.report);
    CHECK(second.ok);
    CHECK_THROWS_WITH_AS(hvp(s, x, Tensor{1.0}), doctest::Contains("v has shape [1], expected [3]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(hvp(f, x, v), doctest::Contains("f must return one element"), std::invalid_argument);
}

TEST_CASE("Anomaly detection in the recorded backward names the op whose backward it was") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.0, 1.0});
    // √x is finite at 0 but its derivative 1/(2√x) is not: the recorded backward of sqrt divides by 0.
    const Var y = sum(sqrt(x));
    DetectAnomaly guard;
    try {
        (void)grad(y, {x}, {.create_graph = true});
        FAIL("expected an AnomalyError");
    } catch (const AnomalyError& e) {
        const std::string what = e.what();
        INFO(what);
        CHECK(e.op() == "sqrt");
        CHECK(what.find("while recording the backward (create_graph) of 'sqrt'") != std::string::npos);
    }
}
