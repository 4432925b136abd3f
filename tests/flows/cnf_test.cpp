#include "flows/cnf.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/functional.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Every weight and bias of the field set to zero.
void zero_field(TimeDependentField& field) {
    for (Parameter* p : field.parameters()) p->value = Tensor::zeros(p->shape());
}

Tensor jacobian_at(TimeDependentField& field, const Tensor& z, double t) {
    return jacobian([&](const Var& v) { return field.forward(v, t); }, z);
}

}  // namespace

TEST_CASE("TimeDependentField: layers see t, the value by hand, names and errors") {
    Rng rng(0);
    TimeDependentField field(2, {1}, rng);
    const auto named = field.named_parameters();
    REQUIRE(named.size() == 4);
    CHECK(named[0].first == "layers.0.weight");
    CHECK(named[0].second->shape() == Shape{3, 1});  // [z₁, z₂, t] → 1
    CHECK(named[2].second->shape() == Shape{2, 2});  // [h, t] → 2
    CHECK(field.name() == "TimeDependentField(2 → 1 → 2, tanh, t at every layer)");
    // f(z, t) = [tanh(0.5 z₁ − z₂ + 2t + 0.1), t] · [[1, −2], [3, 0.5]] + (0.2, −0.3)
    named[0].second->value = Tensor(Shape{3, 1}, std::vector<double>{0.5, -1.0, 2.0});
    named[1].second->value = Tensor(Shape{1}, std::vector<double>{0.1});
    named[2].second->value = Tensor{{1.0, -2.0}, {3.0, 0.5}};
    named[3].second->value = Tensor{0.2, -0.3};
    const double z1 = 0.4, z2 = -0.7, t = 0.3;
    const double h = std::tanh(0.5 * z1 - z2 + 2 * t + 0.1);
    NoGrad no_grad;
    const Tensor f = field.forward(Var(Tensor{{z1, z2}}), t).value();
    CHECK(f[0] == doctest::Approx(h + 3 * t + 0.2).epsilon(1e-15));
    CHECK(f[1] == doctest::Approx(-2 * h + 0.5 * t - 0.3).epsilon(1e-15));
    CHECK_THROWS_WITH_AS(TimeDependentField(0, {4}, rng), doctest::Contains("dim"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(TimeDependentField(2, {0}, rng), doctest::Contains("hidden"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(field.forward(Var(Tensor{{1.0, 2.0, 3.0}}), 0.0), doctest::Contains("D = 2"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(field.forward(Var(Tensor{{1.0, 2.0}}), NAN), doctest::Contains("not finite"),
                         std::invalid_argument);
}

TEST_CASE("forward_with_tangents: J v against the autodiff Jacobian, and no tape needed") {
    Rng rng(8);
    TimeDependentField field(3, {8, 8}, rng);
    const Tensor z = randn(Shape{2, 3}, rng), v = randn(Shape{2, 3}, rng);
    FieldTangents out;
    {
        NoGrad no_grad;  // forward mode runs without recording anything
        out = field.forward_with_tangents(Var(z), 0.7, {Var(v)});
        CHECK(!out.tangents[0].requires_grad());
        CHECK(equal(out.value.value(), field.forward(Var(z), 0.7).value()));
    }
    for (std::size_t i = 0; i < 2; ++i) {
        const Tensor J = jacobian_at(field, narrow(z, 0, i, 1).clone(), 0.7);
        for (std::size_t r = 0; r < 3; ++r) {
            double jv = 0;
            for (std::size_t c = 0; c < 3; ++c) jv += J[r * 3 + c] * v[i * 3 + c];
            CHECK(out.tangents[0].value()[i * 3 + r] == doctest::Approx(jv).epsilon(1e-12));
        }
    }
    CHECK_THROWS_WITH_AS(field.forward_with_tangents(Var(z), 0.0, {Var(Tensor{{1.0, 2.0}})}),
                         doctest::Contains("a tangent has shape"), std::invalid_argument);
}

TEST_CASE("exact_trace: the Jacobian's diagonal, for every sample, and differentiable again") {
    Rng rng(1);
    TimeDependentField field(3, {8, 8}, rng);
    const Tensor z = randn(Shape{4, 3}, rng);
    Tensor tr;
    {
        NoGrad no_grad;
        tr = exact_trace(field, Var(z), 0.25).value();
    }
    REQUIRE(tr.shape() == Shape{4});
    for (std::size_t i = 0; i < 4; ++i) {
        const Tensor J = jacobian_at(field, narrow(z, 0, i, 1).clone(), 0.25);
        CHECK(tr[i] == doctest::Approx(J[0] + J[4] + J[8]).epsilon(1e-12));
    }
    // d tr/d(z, θ): a second derivative of f, against finite differences of the trace.
    GradcheckOptions options;
    options.parameters = field.parameters();
    const GradcheckResult r = gradcheck([&](const std::vector<Var>& in) { return exact_trace(field, in[0], 0.25); },
                                        {narrow(z, 0, 0, 2).clone()}, options);
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("hutchinson_trace: εᵀJε, a unit vector picks one diagonal entry, unbiased on average") {
    Rng rng(2);
    TimeDependentField field(2, {8}, rng);
    const Tensor z = randn(Shape{1, 2}, rng);
    const Tensor J = jacobian_at(field, z, 0.5);
    NoGrad no_grad;
    CHECK(hutchinson_trace(field, Var(z), 0.5, Tensor{{0.0, 1.0}}).item() == doctest::Approx(J[3]).epsilon(1e-12));
    const double a = 0.6, b = -1.3;  // εᵀJε by hand
    CHECK(hutchinson_trace(field, Var(z), 0.5, Tensor{{a, b}}).item() ==
          doctest::Approx(a * a * J[0] + a * b * (J[1] + J[2]) + b * b * J[3]).epsilon(1e-12));
    // Rademacher noise is ±1; in 2-D the estimate is tr J ± (J₁₂ + J₂₁), each half of the time.
    const std::size_t n = 20000;
    const Tensor eps = hutchinson_noise(TraceEstimator::hutchinson_rademacher, n, 2, rng);
    for (const double e : eps.span()) REQUIRE(std::abs(e) == 1.0);
    const Tensor est = hutchinson_trace(field, Var(broadcast_to(z, Shape{n, 2})), 0.5, eps).value();
    double mean = 0;
    for (const double e : est.span()) mean += e / static_cast<double>(n);
    const double se = std::abs(J[1] + J[2]) / std::sqrt(static_cast<double>(n));
    CHECK(std::abs(mean - (J[0] + J[3])) < 4 * se + 1e-12);
    CHECK_THROWS_WITH_AS(hutchinson_noise(TraceEstimator::exact, 2, 2, rng), doctest::Contains("no noise"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(hutchinson_trace(field, Var(z), 0.5, Tensor{{1.0, 0.0, 0.0}}), doctest::Contains("ε has shape"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(exact_trace(field, Var(Tensor{{1.0, 2.0, 3.0}}), 0.5), doctest::Contains("exact_trace"),
                         std::invalid_argument);
}

TEST_CASE("CNF: fields whose flow is known in closed form (RK4 is exact for them)") {
    CNF cnf({.dim = 2, .hidden = {4}, .steps = 3});
    TimeDependentField& field = cnf.field();
    zero_field(field);
    const Tensor z{{0.5, -1.0}, {2.0, 0.25}};
    Tape tape;
    TapeScope scope(tape);
    {
        const Transformed out = cnf.forward(Var(z));  // f = 0: the identity
        CHECK(equal(out.value.value(), z));
        CHECK(out.log_abs_det_jacobian.value()[0] == 0.0);
    }
    // f(z, t) = c·t through the last layer's t weight: x = z + c/2, log-det 0 (f does not depend on z).
    field.named_parameters()[2].second->value = Tensor{{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0.8, -0.6}};
    const Transformed out = cnf.forward(Var(z));
    CHECK(out.value.value()[0] == doctest::Approx(0.5 + 0.4).epsilon(1e-15));
    CHECK(out.value.value()[3] == doctest::Approx(0.25 - 0.3).epsilon(1e-15));
    CHECK(out.log_abs_det_jacobian.value()[1] == 0.0);
    const Transformed back = cnf.inverse(out.value);
    CHECK(max_abs_diff(back.value.value(), z) < 1e-15);
}

TEST_CASE("CNF: log q(x) = the change of variables through the whole integrated map, to RK4's O(h⁴)") {
    auto flow = make_cnf({.dim = 2, .hidden = {16, 16}, .seed = 3});
    auto& cnf = dynamic_cast<CNF&>(flow->layer(0));
    CHECK(cnf.name() == "CNF(2-D, 8 RK4 steps, exact trace)");
    StandardNormal base(2);
    Rng rng(4);
    const Tensor x = randn(Shape{3, 2}, rng);
    double previous = 0;
    for (const std::size_t steps : {8u, 16u}) {
        cnf.set_steps(steps);
        double worst = 0;
        for (std::size_t i = 0; i < 3; ++i) {
            const Tensor xi = narrow(x, 0, i, 1).clone();
            Tape tape;
            TapeScope scope(tape);
            const double lq = flow->log_prob(Var(xi)).item();
            const Tensor zi = cnf.inverse(Var(xi)).value.value();
            const Tensor J = jacobian([&](const Var& v) { return cnf.inverse(v).value; }, xi);
            worst = std::max(worst, std::abs(lq - (base.log_prob(Var(zi)).item() + slogdet(J).log_abs_det)));
        }
        CHECK(worst < 1e-4);
        if (previous > 0) CHECK(previous / worst > 10.0);  // fourth order: ≈ 16
        previous = worst;
    }
    CHECK_THROWS_WITH_AS(cnf.set_steps(0), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cnf.forward(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("CNF::forward"),
                         std::invalid_argument);
}

TEST_CASE("CNF: the conformance kit, at tolerances set by the RK4 error") {
    // The kit compares the CNF with itself, and two of its comparisons meet the solver's error rather
    // than rounding: RK4 forwards then backwards is not the identity (round trips, inverse_log_det), and
    // ℓ is RK4's integral of the trace while the autodiff Jacobian is the exact one of the discrete map
    // (log_det_autodiff). Both are O(h⁴): with 8 steps and this random field they measured 1e-10 and
    // 3e-9, against the defaults 1e-9 and 1e-8, which a stronger (trained) field would exceed. 1e-7
    // leaves room for that and still catches a wrong sign or a missing term, which are O(1).
    CNF cnf({.dim = 2, .hidden = {16, 16}, .steps = 8, .seed = 5});
    Rng rng(6);
    const Tensor points = randn(Shape{8, 2}, rng);
    ConformanceOptions options;
    options.round_trip_tol = 1e-7;
    options.log_det_tol = 1e-7;
    options.inverse_log_det_tol = 1e-7;
    options.jacobian_points = 8;
    options.grid_points_2d = 81;
    options.mc_samples = 2000;
    CHECK_BIJECTOR(cnf, points, options);
    // The gap is the solver's: a quarter of the step size divides it by about 4⁴ = 256.
    ConformanceOptions only_log_det;
    only_log_det.round_trip = only_log_det.inverse_log_det = only_log_det.gradients = false;
    only_log_det.batch_independence = only_log_det.density = false;
    cnf.set_steps(2);
    const double coarse = check_bijector(cnf, points, only_log_det).find("log_det_autodiff")->worst;
    cnf.set_steps(8);
    const double fine = check_bijector(cnf, points, only_log_det).find("log_det_autodiff")->worst;
    CHECK(coarse / fine > 100.0);
    CHECK(coarse / fine < 600.0);
}

TEST_CASE("CNF: Hutchinson's log-det is unbiased for the exact one, and training-mode gradients flow") {
    CNF exact({.dim = 2, .hidden = {8}, .steps = 4, .seed = 7});
    CNF noisy({.dim = 2, .hidden = {8}, .steps = 4, .trace = TraceEstimator::hutchinson_gaussian, .seed = 7});
    const Tensor z = broadcast_to(Tensor{{0.3, -0.2}}, Shape{4000, 2});
    Tape tape;
    TapeScope scope(tape);
    const Tensor e = exact.forward(Var(z)).log_abs_det_jacobian.value();
    const Transformed h = noisy.forward(Var(z));
    double mean = 0, var = 0;
    for (const double v : h.log_abs_det_jacobian.value().span()) mean += v / 4000.0;
    for (const double v : h.log_abs_det_jacobian.value().span()) var += (v - mean) * (v - mean) / 3999.0;
    CHECK(var > 0);
    CHECK(std::abs(mean - e[0]) < 4 * std::sqrt(var / 4000.0));
    CHECK(max_abs_diff(h.value.value(), exact.forward(Var(z)).value.value()) == 0.0);  // same path
    tape.backward(sum(h.log_abs_det_jacobian));
    for (const auto& [name, p] : noisy.named_parameters()) CHECK_MESSAGE(p->grad.defined(), name);
    // Under NoGrad: the same values, nothing recorded; the trajectory's last state is forward's value.
    NoGrad no_grad;
    const Transformed plain = exact.forward(Var(z));
    CHECK(equal(plain.log_abs_det_jacobian.value(), e));
    CHECK(!plain.value.requires_grad());
    const std::vector<Tensor> path = exact.trajectory(Tensor{{0.3, -0.2}}, 0.0, 1.0);
    REQUIRE(path.size() == 5);
    CHECK(equal(path[0], Tensor{{0.3, -0.2}}));
    CHECK(equal(path[4], narrow(plain.value.value(), 0, 0, 1).clone()));
}

TEST_CASE("exact_trace: forward-mode tangents agree with reverse mode over the engine's grad(create_graph)") {
    // Two independent second-order constructions of the same quantity: tr(∂f/∂z) by D recorded
    // backward passes (reverse-over-reverse once differentiated in θ) and by D tangents (reverse-over-
    // forward). Values and θ-gradients must agree.
    Rng rng(9);
    TimeDependentField field(2, {8, 8}, rng);
    const Tensor z = randn(Shape{5, 2}, rng);
    Tape tape;
    TapeScope scope(tape);
    const Var zv = tape.variable(z);
    const Var fz = field.forward(zv, 0.4);
    Var by_reverse;
    for (std::size_t j = 0; j < 2; ++j) {
        const Var row = grad(sum(narrow(fz, 1, j, 1)), {zv}, GradOptions{.create_graph = true})[0];
        by_reverse = j == 0 ? narrow(row, 1, 0, 1) : by_reverse + narrow(row, 1, j, 1);
    }
    by_reverse = reshape(by_reverse, Shape{5});
    const Var by_forward = exact_trace(field, zv, 0.4);
    CHECK(max_abs_diff(by_reverse.value(), by_forward.value()) < 1e-13);
    const auto parameter_grads = [&](const Var& trace) {
        field.zero_grad();
        tape.backward(sum(trace * Var(Tensor{1.0, -2.0, 0.5, 3.0, 1.5})));
        std::vector<Tensor> out;
        for (Parameter* p : field.parameters()) out.push_back(p->grad.clone());
        return out;
    };
    const std::vector<Tensor> reverse_grads = parameter_grads(by_reverse), forward_grads = parameter_grads(by_forward);
    for (std::size_t k = 0; k < reverse_grads.size(); ++k) CHECK(max_abs_diff(reverse_grads[k], forward_grads[k]) < 1e-12);
}
