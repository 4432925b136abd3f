// grad with create_graph (autograd/functional.hpp): second derivatives, Hessian-vector products and a
// loss that contains a Jacobian trace, each against central finite differences of first-order
// quantities; and the errors for what cannot be differentiated twice.
#include "autograd/functional.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"

using namespace tapeflow;

namespace {

constexpr double eps = 1e-5;

// ∂/∂x of a scalar function of one tensor, by the first-order fast path on a private tape.
Tensor first_gradient(const std::function<Var(const Var&)>& f, const Tensor& x) {
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    return grad(f(xv), {xv})[0].value();
}

// The Hessian by central differences of the first-order gradient: column j is
// (∇f(x + eps·e_j) − ∇f(x − eps·e_j)) / 2eps.
Tensor numeric_hessian(const std::function<Var(const Var&)>& f, const Tensor& x) {
    const std::size_t n = x.numel();
    Tensor H(Shape{n, n});
    for (std::size_t j = 0; j < n; ++j) {
        Tensor plus = x.clone(), minus = x.clone();
        plus[j] += eps;
        minus[j] -= eps;
        const Tensor gp = first_gradient(f, plus), gm = first_gradient(f, minus);
        for (std::size_t i = 0; i < n; ++i) H[i * n + j] = (gp[i] - gm[i]) / (2 * eps);
    }
    return H;
}

// The Hessian by reverse-over-reverse: one recorded gradient, then one backward per row.
Tensor recorded_hessian(const std::function<Var(const Var&)>& f, const Tensor& x) {
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    const Var g = flatten(grad(f(xv), {xv}, {.create_graph = true})[0]);
    const std::size_t n = x.numel();
    Tensor H(Shape{n, n});
    for (std::size_t i = 0; i < n; ++i) {
        const Tensor row = grad(narrow(g, 0, i, 1), {xv})[0].value();
        for (std::size_t j = 0; j < n; ++j) H[i * n + j] = row[j];
    }
    return H;
}

double max_abs(const Tensor& a, const Tensor& b) { return max_abs_diff(a, b); }

// A small MLP vector field f(z) = W₂ᵀ·act(z·W₁ + b₁) + b₂ over a batch z [B, 2], with the ops a
// continuous flow's field uses (matmul, broadcast add, tanh/softplus/sigmoid, concat, narrow).
struct Field {
    Var w1, b1, w2, b2;
    Var operator()(const Var& z) const {
        const Var h = matmul(z, w1) + b1;                              // [B, 4], b1 broadcast over rows
        const Var a = concat({tanh(narrow(h, 1, 0, 2)), softplus(narrow(h, 1, 2, 1)),
                              sigmoid(narrow(h, 1, 3, 1)) * 2.0 - 1.0}, 1);
        return matmul(a, w2) + b2;                                     // [B, 2]
    }
};

// tr(∂f/∂z) per sample: Σ_i ∂f_i/∂z_i, each term from one recorded gradient of Σ_b f[b, i].
Var exact_trace(const Field& f, const Var& z, const Var& out) {
    Var trace;
    for (std::size_t i = 0; i < out.shape()[1]; ++i) {
        const Var gi = grad(sum(narrow(out, 1, i, 1)), {z}, {.create_graph = true})[0];  // [B, 2]
        const Var term = flatten(narrow(gi, 1, i, 1));
        trace = i == 0 ? term : trace + term;
    }
    (void)f;
    return trace;
}

// loss(θ) = mean(tr ∂f/∂z) + mean(f²): the shape of a continuous flow's training loss.
Var trace_loss(const Field& f, const Var& z) {
    const Var out = f(z);
    return mean(exact_trace(f, z, out)) + mean(square(out));
}

struct FieldValues {
    Tensor w1, b1, w2, b2, z;
};

FieldValues random_field(std::uint64_t seed) {
    Rng rng(seed);
    return {randn(Shape{2, 4}, rng), randn(Shape{4}, rng) * 0.5, randn(Shape{4, 2}, rng),
            randn(Shape{2}, rng) * 0.5, randn(Shape{3, 2}, rng)};
}

double loss_value(const FieldValues& v) {
    Tape tape;
    TapeScope scope(tape);
    const Field f{tape.variable(v.w1.clone()), tape.variable(v.b1.clone()), tape.variable(v.w2.clone()),
                  tape.variable(v.b2.clone())};
    return trace_loss(f, tape.variable(v.z.clone())).item();
}

}  // namespace

TEST_CASE("grad(grad(f)) matches the derivative of the gradient for a scalar function") {
    // f(x) = x³·sin x:  f' = 3x² sin x + x³ cos x,  f'' = 6x sin x + 6x² cos x − x³ sin x.
    Tape tape;
    TapeScope scope(tape);
    const double x0 = 0.7;
    const Var x = tape.variable(Tensor::scalar(x0));
    const Var y = pow(x, 3.0) * sin(x);
    const Var d1 = grad(y, {x}, {.create_graph = true})[0];
    CHECK(d1.requires_grad());
    CHECK(d1.item() == doctest::Approx(3 * x0 * x0 * std::sin(x0) + x0 * x0 * x0 * std::cos(x0)).epsilon(1e-13));
    const Var d2 = grad(d1, {x}, {.create_graph = true})[0];
    CHECK(d2.item() == doctest::Approx(6 * x0 * std::sin(x0) + 6 * x0 * x0 * std::cos(x0) -
                                       x0 * x0 * x0 * std::sin(x0)).epsilon(1e-12));
    // Third order, against a central difference of the second derivative.
    const Var d3 = grad(d2, {x})[0];
    const auto second = [](double v) {
        return 6 * v * std::sin(v) + 6 * v * v * std::cos(v) - v * v * v * std::sin(v);
    };
    CHECK(d3.item() == doctest::Approx((second(x0 + eps) - second(x0 - eps)) / (2 * eps)).epsilon(1e-7));
    // Without create_graph the gradient is a constant: it cannot be differentiated again.
    const Var plain = grad(y, {x})[0];
    CHECK_FALSE(plain.requires_grad());
    CHECK(plain.item() == doctest::Approx(d1.item()).epsilon(1e-15));
}

TEST_CASE("The recorded Hessian matches finite differences of the gradient for each op of an MLP") {
    Rng rng(7);
    const Tensor x = randn(Shape{2, 3}, rng) * 0.8;
    const Tensor w = randn(Shape{3, 2}, rng);
    const Tensor bias = Tensor{0.3, -0.2};
    struct Case {
        const char* name;
        std::function<Var(const Var&)> f;
    };
    const Var W(w), B(bias);
    const std::vector<Case> cases = {
        {"matmul + tanh", [&](const Var& v) { return sum(tanh(matmul(v, W) + B)); }},
        {"softplus · sigmoid", [&](const Var& v) { return sum(softplus(v) * sigmoid(v)); }},
        {"exp / log", [&](const Var& v) { return sum(exp(v * 0.5) / log(square(v) + 2.0)); }},
        {"sub, neg, pow, mean", [&](const Var& v) { return mean(pow(square(v - 0.1) + 1.0, 1.5)) - sum(-v); }},
        {"div by a broadcast row", [&](const Var& v) { return sum(v / (sum(square(v), 0, true) + 1.0)); }},
        {"concat / narrow", [&](const Var& v) {
             return sum(square(concat({narrow(v, 1, 0, 1) * narrow(v, 1, 2, 1), exp(narrow(v, 1, 1, 2))}, 1)));
         }},
        {"matmul_nt / matmul_tn", [&](const Var& v) { return sum(tanh(matmul_nt(v, v))) + sum(square(matmul_tn(v, v))); }},
        {"sum_to by broadcasting", [&](const Var& v) { return sum(square(v * narrow(v, 0, 0, 1))); }},
        {"mean over an axis", [&](const Var& v) { return sum(exp(mean(v, 0)) * sum(v, 1, true)); }},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const Tensor analytic = recorded_hessian(c.f, x);
        const Tensor numeric = numeric_hessian(c.f, x);
        CHECK(max_abs(analytic, numeric) <= 1e-6 * (1 + max_abs(numeric, Tensor::zeros(numeric.shape()))));
        // A Hessian is symmetric: a check the finite differences do not impose on the analytic one.
        CHECK(max_abs(analytic, transpose(analytic)) <= 1e-12);
    }
}

TEST_CASE("A Hessian-vector product is the gradient of ∇f·v") {
    Rng rng(3);
    const Tensor x0 = randn(Shape{4}, rng);
    const Tensor v = randn(Shape{4}, rng);
    const auto f = [](const Var& x) { return sum(tanh(x) * exp(x * 0.3)) + sum(square(x)) * sum(x); };
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(x0.clone());
    const Var g = grad(f(x), {x}, {.create_graph = true})[0];
    const Tensor hv = grad(sum(g * Var(v)), {x})[0].value();
    // (∇f(x + eps·v) − ∇f(x − eps·v)) / 2eps.
    const Tensor numeric = (first_gradient(f, x0 + v * eps) - first_gradient(f, x0 - v * eps)) / (2 * eps);
    CHECK(max_abs(hv, numeric) <= 1e-7);
}

TEST_CASE("A loss with the Jacobian trace of an MLP field trains by tape.backward") {
    const FieldValues v = random_field(11);
    Tape tape;
    TapeScope scope(tape);
    Parameter w1(v.w1.clone()), b1(v.b1.clone()), w2(v.w2.clone()), b2(v.b2.clone());
    const Field f{w1.var(), b1.var(), w2.var(), b2.var()};
    const Var z = tape.variable(v.z.clone());
    const Var loss = trace_loss(f, z);
    CHECK(loss.item() == doctest::Approx(loss_value(v)).epsilon(1e-14));
    tape.backward(loss);
    CHECK(tape.size() > 70);  // the recorded backward passes made the node list grow (and reallocate)

    // Every parameter element against a central difference of the loss.
    Parameter* params[] = {&w1, &b1, &w2, &b2};
    Tensor* values[] = {const_cast<Tensor*>(&v.w1), const_cast<Tensor*>(&v.b1), const_cast<Tensor*>(&v.w2),
                        const_cast<Tensor*>(&v.b2)};
    for (std::size_t k = 0; k < 4; ++k) {
        for (std::size_t j = 0; j < values[k]->numel(); ++j) {
            FieldValues plus = v, minus = v;
            Tensor* tp[] = {&plus.w1, &plus.b1, &plus.w2, &plus.b2};
            Tensor* tm[] = {&minus.w1, &minus.b1, &minus.w2, &minus.b2};
            *tp[k] = tp[k]->clone();
            *tm[k] = tm[k]->clone();
            (*tp[k])[j] += eps;
            (*tm[k])[j] -= eps;
            const double numeric = (loss_value(plus) - loss_value(minus)) / (2 * eps);
            INFO("parameter " << k << " element " << j);
            CHECK(params[k]->grad[j] == doctest::Approx(numeric).epsilon(1e-6).scale(1.0));
        }
    }
    // And the exact trace itself against finite differences of f along each coordinate.
    const Var out = f(z);
    const Tensor trace = exact_trace(f, z, out).value();
    for (std::size_t b = 0; b < 3; ++b) {
        double numeric = 0;
        for (std::size_t i = 0; i < 2; ++i) {
            Tensor zp = v.z.clone(), zm = v.z.clone();
            zp[b * 2 + i] += eps;
            zm[b * 2 + i] -= eps;
            NoGrad off;
            numeric += (f(Var(zp)).value()[b * 2 + i] - f(Var(zm)).value()[b * 2 + i]) / (2 * eps);
        }
        CHECK(trace[b] == doctest::Approx(numeric).epsilon(1e-7));
    }
}

TEST_CASE("grad refuses what it cannot differentiate, naming the op") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.5, 1.5});
    // A rule over Tensors only (built on map): first order works, a recorded backward is refused.
    const auto log_cosh = [](const Var& v) {
        return record("log_cosh", map(v.value(), [](double t) { return std::log(std::cosh(t)); }), {v},
                      [](Backward& ctx) {
                          ctx.accumulate(0, map(ctx.grad(), ctx.input(0), [](double g, double t) { return g * std::tanh(t); }));
                      });
    };
    const Var y = sum(log_cosh(x) * 2.0);
    CHECK(grad(y, {x})[0].value()[0] == doctest::Approx(2 * std::tanh(0.5)));
    CHECK_THROWS_WITH_AS(grad(y, {x}, {.create_graph = true}),
                         doctest::Contains("op log_cosh has no differentiable backward; create_graph needs"),
                         std::logic_error);
    // The same op written with a generic rule is differentiable.
    const auto log_cosh2 = [](const Var& v) {
        return record("log_cosh", map(v.value(), [](double t) { return std::log(std::cosh(t)); }), {v},
                      [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), tanh(ctx.input(0)))); });
    };
    const Var g = grad(sum(log_cosh2(x)), {x}, {.create_graph = true})[0];
    const Tensor h = grad(sum(g), {x})[0].value();  // d²/dx² log cosh = 1 − tanh²
    CHECK(h[1] == doctest::Approx(1 - std::tanh(1.5) * std::tanh(1.5)).epsilon(1e-14));

    CHECK_THROWS_WITH_AS(grad(x * 2.0, {x}), doctest::Contains("[2]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(grad(sum(x), {x}, Tensor{1.0, 2.0, 3.0}), doctest::Contains("grad_output shape [3]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(grad(Var(Tensor::scalar(1.0)), {x}), doctest::Contains("does not depend"),
                         std::invalid_argument);
    // A Var of an earlier generation (before tape.clear()) is refused, not misread.
    const Var old = sum(x);
    tape.clear();
    CHECK_THROWS_WITH_AS(grad(old, {x}, {.create_graph = true}), doctest::Contains("tape.clear()"), std::logic_error);
}

TEST_CASE("Nested levels: no_grad inside, gradients of unused inputs, a vector-Jacobian seed") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.2, -0.4, 0.9});
    const Var unused = tape.variable(Tensor{1.0});
    const Var y = exp(x) * x;
    // A Var seed: the vjp is linear in it, and both it and x can be differentiated.
    const Var u = tape.variable(Tensor{1.0, 2.0, -1.0});
    const std::vector<Var> gs = grad(y, {x, unused}, u, {.create_graph = true});
    CHECK(equal(gs[1].value(), Tensor{0.0}));
    // d/du Σ (u ⊙ y') = y' = eˣ(1 + x).
    const Tensor dy = grad(sum(gs[0]), {u})[0].value();
    for (std::size_t i = 0; i < 3; ++i) {
        const double xi = x.value()[i];
        CHECK(dy[i] == doctest::Approx(std::exp(xi) * (1 + xi)).epsilon(1e-14));
    }
    // Under no_grad the recorded backward records nothing: the gradient comes back as a constant.
    const Var total = sum(y);
    {
        NoGrad off;
        const Var g = grad(total, {x}, {.create_graph = true})[0];
        CHECK_FALSE(g.requires_grad());
        CHECK(g.value()[0] == doctest::Approx(std::exp(0.2) * 1.2).epsilon(1e-14));
    }
}

TEST_CASE("Kinks: relu, abs and clamp have the second derivative of each side, away from the kink") {
    // f = Σ g(x)·x for g = relu, abs, clamp: f'' = 2g'(x) + g''(x)·x, with g'' = 0 off the kink.
    // Points on both sides of each kink (0 for relu and abs, ±1 for clamp(−1, 1)).
    const Tensor x = Tensor{-1.3, -0.7, -0.2, 0.25, 0.8, 1.4};
    struct Case {
        const char* name;
        std::function<Var(const Var&)> f;
        std::function<double(double)> slope;  // g'(x) off the kink
    };
    const std::vector<Case> cases = {
        {"relu", [](const Var& v) { return sum(relu(v) * v); }, [](double t) { return t > 0 ? 1.0 : 0.0; }},
        {"abs", [](const Var& v) { return sum(abs(v) * v); }, [](double t) { return t > 0 ? 1.0 : -1.0; }},
        {"clamp", [](const Var& v) { return sum(clamp(v, -1.0, 1.0) * v); },
         [](double t) { return -1 < t && t < 1 ? 1.0 : 0.0; }},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const Tensor analytic = recorded_hessian(c.f, x);
        const Tensor numeric = numeric_hessian(c.f, x);
        CHECK(max_abs(analytic, numeric) <= 1e-6);
        for (std::size_t i = 0; i < x.numel(); ++i)
            CHECK(analytic[i * x.numel() + i] == doctest::Approx(2 * c.slope(x[i])).epsilon(1e-14));
    }
    // At the kink itself the rule's one-sided value is used: relu'(0) = 0, so f'' = 0 there.
    const Tensor at_kink = recorded_hessian([](const Var& v) { return sum(relu(v) * v); }, Tensor{0.0});
    CHECK(at_kink[0] == 0.0);
}
