#include "flows/conformance.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/elementwise.hpp"
#include "flows/planar.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Deliberately broken bijectors: each wraps a correct one and breaks one promise.
enum class Fault {
    none,
    flipped_log_det,          // both log-dets negated: round trips and inverse_log_det still pass
    flipped_inverse_log_det,  // only the inverse's log-det negated
    wrong_inverse,            // the inverse is off by 1e-3
    nan_forward,              // the forward returns NaN for the second sample
    throwing_inverse,         // the inverse throws
    batch_dependent,          // the forward shifts by the batch mean
    unused_parameter,         // a registered parameter the map never uses
    wrong_gradient,           // the forward's backward rule is off by a factor
    wrong_gradient_in_tails,  // … only where |f(z)| > 3, so checks on typical points miss it
};

class Faulty : public Bijector {
public:
    Faulty(std::unique_ptr<Bijector> inner, Fault fault) : fault_(fault) {
        inner_ = &register_module("inner", std::move(inner));
        if (fault == Fault::unused_parameter) register_parameter("unused", Tensor{1.0});
    }
    Transformed forward(const Var& z) override {
        Transformed t = inner_->forward(z);
        switch (fault_) {
            case Fault::flipped_log_det: t.log_abs_det_jacobian = -t.log_abs_det_jacobian; break;
            case Fault::nan_forward: {
                Tensor poison = Tensor::zeros(t.value.shape());
                if (poison.shape()[0] > 1) poison[poison.shape()[1]] = NAN;
                t.value = t.value + Var(poison);
                break;
            }
            case Fault::batch_dependent: t.value = t.value + mean(z, 0); break;
            case Fault::wrong_gradient:
                // Identity in value; the backward rule passes on 1.5× the gradient.
                t.value = record("wrong", t.value.value(), {t.value},
                                 [](Backward& ctx) { ctx.accumulate(0, ctx.grad() * 1.5); });
                break;
            case Fault::wrong_gradient_in_tails:
                t.value = record("wrong_in_tails", t.value.value(), {t.value}, [](Backward& ctx) {
                    Tensor g = ctx.grad().clone();
                    for (std::size_t i = 0; i < g.numel(); ++i) g[i] *= std::abs(ctx.value()[i]) > 3 ? 1.5 : 1.0;
                    ctx.accumulate(0, g);
                });
                break;
            default: break;
        }
        return t;
    }
    Transformed inverse(const Var& x) override {
        if (fault_ == Fault::throwing_inverse) throw std::runtime_error("inverse not implemented");
        Transformed t = inner_->inverse(x);
        if (fault_ == Fault::flipped_log_det || fault_ == Fault::flipped_inverse_log_det)
            t.log_abs_det_jacobian = -t.log_abs_det_jacobian;
        if (fault_ == Fault::wrong_inverse) t.value = t.value + 1e-3;
        return t;
    }
    std::size_t dim() const override { return inner_->dim(); }
    std::string name() const override { return "Faulty(" + inner_->name() + ")"; }

private:
    Bijector* inner_;
    Fault fault_;
};

std::unique_ptr<Bijector> scale_by(std::size_t d, double s) {
    return std::make_unique<Affine>(Tensor::full(Shape{d}, 0.1), Tensor::full(Shape{d}, std::log(s)));
}

std::unique_ptr<Faulty> faulty(std::size_t d, Fault fault, double s = 2.0) {
    return std::make_unique<Faulty>(scale_by(d, s), fault);
}

bool passed(const ConformanceReport& r, std::string_view check) {
    const ConformanceCheck* c = r.find(check);
    REQUIRE_MESSAGE(c != nullptr, "no check named " << check);
    return c->passed;
}

}  // namespace

TEST_CASE("check_bijector: a correct bijector passes every check, with a readable report") {
    auto b = faulty(2, Fault::none);
    Rng rng(1);
    const ConformanceReport r = check_bijector(*b, randn(Shape{10, 2}, rng));
    CHECK_MESSAGE(r.ok, r.to_string());
    CHECK(r.checks.size() == 10);
    CHECK(r.bijector == "Faulty(Affine(D = 2))");
    CHECK(r.points == 10);
    CHECK(r.dim == 2);
    const std::string table = r.to_string();
    CHECK(table.find("all 10 checks passed") != std::string::npos);
    for (const char* name : {"round_trip_z", "round_trip_x", "log_det_autodiff", "log_det_finite_diff", "inverse_log_det",
                             "parameter_gradients", "gradcheck_forward", "gradcheck_inverse", "batch_independence",
                             "density"})
        CHECK_MESSAGE(table.find(name) != std::string::npos, name);
    CHECK(r.find("nope") == nullptr);
    CHECK(r.find("density")->detail.find("trapezoid") != std::string::npos);
    CHECK_BIJECTOR(*b, randn(Shape{4, 2}, rng));
}

TEST_CASE("check_bijector: a sign-flipped log-det fails the log-det and density checks, not the round trips") {
    for (const std::size_t d : {1, 2, 3}) {
        INFO("D = " << d);
        auto b = faulty(d, Fault::flipped_log_det);
        Rng rng(2);
        const ConformanceReport r = check_bijector(*b, randn(Shape{8, d}, rng));
        CHECK_FALSE(r.ok);
        CHECK(passed(r, "round_trip_z"));
        CHECK(passed(r, "round_trip_x"));
        CHECK(passed(r, "inverse_log_det"));  // consistently wrong in both directions
        CHECK_FALSE(passed(r, "log_det_autodiff"));
        CHECK_FALSE(passed(r, "log_det_finite_diff"));
        CHECK_FALSE(passed(r, "density"));
        // ∫ p_z(z) |det J|² dz = σ^{2D} = 4^D instead of 1.
        CHECK(r.find("density")->worst > 2);
        CHECK(r.to_string().find("FAILED") != std::string::npos);
    }
    // The same with a planar flow, whose log-det varies from point to point (D = 5: importance sampling).
    for (const std::size_t d : {2, 5}) {
        INFO("planar, D = " << d);
        Rng rng(3);
        auto p = std::make_unique<Planar>(d, rng, PlanarOptions{.init_std = 1.5});
        Faulty flipped(std::move(p), Fault::flipped_log_det);
        const ConformanceReport r = check_bijector(flipped, randn(Shape{8, d}, rng));
        CHECK(passed(r, "round_trip_z"));
        CHECK_FALSE(passed(r, "log_det_autodiff"));
        CHECK_FALSE_MESSAGE(passed(r, "density"), r.to_string());
    }
}

TEST_CASE("check_bijector: a log-det wrong in one direction only fails inverse_log_det and density") {
    auto b = faulty(2, Fault::flipped_inverse_log_det);
    Rng rng(4);
    const ConformanceReport r = check_bijector(*b, randn(Shape{8, 2}, rng));
    CHECK(passed(r, "log_det_autodiff"));  // the forward is right
    CHECK_FALSE(passed(r, "inverse_log_det"));
    CHECK_FALSE(passed(r, "density"));  // log_prob goes through the inverse
}

TEST_CASE("check_bijector: a wrong inverse fails the round trips") {
    auto b = faulty(2, Fault::wrong_inverse);
    Rng rng(5);
    const ConformanceReport r = check_bijector(*b, randn(Shape{8, 2}, rng));
    CHECK_FALSE(passed(r, "round_trip_z"));
    CHECK_FALSE(passed(r, "round_trip_x"));
    CHECK(r.find("round_trip_z")->worst >= 1e-4);
    CHECK(passed(r, "log_det_autodiff"));
}

TEST_CASE("check_bijector: NaNs and exceptions fail the checks, never escape them") {
    Rng rng(6);
    auto nan = faulty(2, Fault::nan_forward);
    const ConformanceReport r = check_bijector(*nan, randn(Shape{8, 2}, rng));
    CHECK_FALSE(r.ok);
    CHECK_FALSE(passed(r, "round_trip_z"));
    CHECK(std::isnan(r.find("round_trip_z")->worst));

    auto throwing = faulty(2, Fault::throwing_inverse);
    ConformanceReport t;
    CHECK_NOTHROW(t = check_bijector(*throwing, randn(Shape{8, 2}, rng)));
    CHECK_FALSE(t.ok);
    CHECK_FALSE(passed(t, "round_trip_z"));
    CHECK(t.find("round_trip_z")->detail == "threw: inverse not implemented");
    CHECK(passed(t, "log_det_autodiff"));  // forward only
    CHECK(passed(t, "gradcheck_forward"));
    CHECK_FALSE(passed(t, "gradcheck_inverse"));
    CHECK_FALSE(passed(t, "density"));
}

TEST_CASE("check_bijector: a batch-dependent map fails batch_independence") {
    auto b = faulty(2, Fault::batch_dependent);
    Rng rng(7);
    const ConformanceReport r = check_bijector(*b, randn(Shape{8, 2}, rng));
    CHECK_FALSE(passed(r, "batch_independence"));
    CHECK(r.find("batch_independence")->detail.find("forward of sample") != std::string::npos);
}

TEST_CASE("check_bijector: a parameter without gradient is named") {
    auto b = faulty(2, Fault::unused_parameter);
    Rng rng(8);
    const ConformanceReport r = check_bijector(*b, randn(Shape{8, 2}, rng));
    CHECK_FALSE(passed(r, "parameter_gradients"));
    CHECK(r.find("parameter_gradients")->worst == 2);  // once each way
    CHECK(r.find("parameter_gradients")->detail == "no (or a non-finite) gradient in forward: unused; inverse: unused");
}

TEST_CASE("check_bijector: a wrong backward rule fails gradcheck") {
    auto b = faulty(2, Fault::wrong_gradient);
    Rng rng(9);
    const ConformanceReport r = check_bijector(*b, randn(Shape{8, 2}, rng));
    CHECK_FALSE(passed(r, "gradcheck_forward"));
    CHECK(r.find("gradcheck_forward")->detail.find("gradcheck FAILED") != std::string::npos);
    CHECK_FALSE(passed(r, "log_det_autodiff"));  // the autodiff Jacobian is 1.5× too
    CHECK(passed(r, "log_det_finite_diff"));
    CHECK(passed(r, "gradcheck_inverse"));
}

TEST_CASE("check_bijector: a rule wrong only in the tails is caught on all points or on chosen ones") {
    auto b = faulty(1, Fault::wrong_gradient_in_tails);
    // Typical points first, the tail point (f(z) = 2·2.5 + 0.1 > 3) last.
    const Tensor points(Shape{4, 1}, {0.3, -0.7, 1.1, 2.5});
    ConformanceOptions o;
    o.log_det = false;  // the autodiff Jacobian is wrong in the tail too; the gradchecks are what is tested
    const ConformanceReport typical = check_bijector(*b, points, o);
    CHECK(passed(typical, "gradcheck_forward"));  // the first 2 points only
    CHECK(typical.find("gradcheck_chosen_forward") == nullptr);
    CHECK(typical.find("gradcheck_forward")->detail.find("on 2 point(s)") != std::string::npos);

    o.gradcheck_points = ConformanceOptions::all;
    const ConformanceReport all = check_bijector(*b, points, o);
    CHECK_FALSE(passed(all, "gradcheck_forward"));
    CHECK(all.find("gradcheck_forward")->detail.find("on 4 point(s)") != std::string::npos);

    o.gradcheck_points = 2;
    o.gradcheck_at = Tensor(Shape{2, 1}, {-2.0, 4.0});  // one tail on each side
    const ConformanceReport chosen = check_bijector(*b, points, o);
    CHECK(passed(chosen, "gradcheck_forward"));
    CHECK_FALSE(passed(chosen, "gradcheck_chosen_forward"));
    CHECK(chosen.find("gradcheck_chosen_forward")->detail.find("on 2 chosen point(s)") != std::string::npos);
    CHECK(passed(chosen, "gradcheck_chosen_inverse"));  // the fault is in forward's rule only

    auto good = faulty(1, Fault::none);
    CHECK_BIJECTOR(*good, points, o);
}

TEST_CASE("check_bijector: mass outside the quadrature box is named in a warning") {
    // N(0, 1) scaled by 4: a fraction 2Φ(−10/4) = 0.0124 of it lies outside [−10, 10].
    auto wide = faulty(1, Fault::none, 4.0);
    const Tensor points(Shape{3, 1}, {0.1, -0.4, 1.2});
    const ConformanceReport r = check_bijector(*wide, points);
    CHECK_FALSE(passed(r, "density"));
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].find("outside the quadrature box [−10, 10]") != std::string::npos);
    CHECK(r.to_string().find("warning: density: 0.01") != std::string::npos);
    const double outside = std::erfc(2.5 / std::sqrt(2.0));
    CHECK(std::abs(r.find("density")->worst - outside) <= 1e-4);
    // A wider box takes it all in: no warning, and the check passes.
    ConformanceOptions o;
    o.box_half_width = 30;
    o.grid_points_1d = 12001;
    const ConformanceReport wider = check_bijector(*wide, points, o);
    CHECK_MESSAGE(wider.ok, wider.to_string());
    CHECK(wider.warnings.empty());
    // The usual case, scale 2 (mass 6e-7 outside): no warning.
    CHECK(check_bijector(*faulty(1, Fault::none), points).warnings.empty());
}

TEST_CASE("check_bijector: importance sampling for D > 2 reports its standard error") {
    auto b = faulty(4, Fault::none, 1.3);
    Rng rng(10);
    ConformanceOptions o;
    o.mc_samples = 4000;
    const ConformanceReport r = check_bijector(*b, randn(Shape{4, 4}, rng), o);
    CHECK_MESSAGE(r.ok, r.to_string());
    const ConformanceCheck* density = r.find("density");
    CHECK(density->detail.find("importance sampling") != std::string::npos);
    CHECK(density->tolerance >= o.density_tol);
}

TEST_CASE("check_bijector: options select the checks") {
    auto b = faulty(2, Fault::none);
    Rng rng(11);
    ConformanceOptions o;
    o.log_det = o.inverse_log_det = o.gradients = o.batch_independence = o.density = false;
    const ConformanceReport r = check_bijector(*b, randn(Shape{3, 2}, rng), o);
    REQUIRE(r.checks.size() == 2);
    CHECK(r.checks[0].name == "round_trip_z");
    CHECK(r.checks[1].name == "round_trip_x");
}

TEST_CASE("check_bijector: the caller's parameters, gradients and tape are left as they were") {
    Rng rng(12);
    Planar p(2, rng, {.init_std = 1.0});
    p.u().grad = Tensor{7.0, -7.0};
    const Tensor u_before = p.u().value.clone(), w_before = p.w().value.clone();
    Tape& tape = Tape::current();
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var y = sum(x * x);
    const std::size_t size_before = tape.size();
    CHECK_BIJECTOR(p, randn(Shape{6, 2}, rng));
    CHECK(equal(p.u().grad, Tensor{7.0, -7.0}));
    CHECK(equal(p.u().value, u_before));
    CHECK(equal(p.w().value, w_before));
    CHECK(tape.size() == size_before);
    tape.backward(y);
    CHECK(equal(x.grad(), Tensor{2.0, 4.0}));
    tape.clear();
}

TEST_CASE("check_bijector: invalid arguments throw") {
    auto b = faulty(2, Fault::none);
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{1.0, 2.0}), doctest::Contains("non-empty batch [N, D], got shape [2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor::zeros(Shape{0, 2})), doctest::Contains("non-empty"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0, 3.0}}),
                         doctest::Contains("Faulty(Affine(D = 2)) acts on D = 2, but the points have D = 3"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, NAN}}), doctest::Contains("finite"), std::invalid_argument);
    ConformanceOptions o;
    o.round_trip_tol = -1;
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o), doctest::Contains("options.round_trip_tol must be ≥ 0"),
                         std::invalid_argument);
    o = {};
    o.grid_points_2d = 1;
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o), doctest::Contains("options.grid_points_2d"),
                         std::invalid_argument);
    o = {};
    o.mc_scale = 0;
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o), doctest::Contains("options.mc_scale"),
                         std::invalid_argument);
    o = {};
    o.gradcheck_points = 0;
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o), doctest::Contains("gradcheck_points"),
                         std::invalid_argument);
    o = {};
    o.gradcheck_at = Tensor{{1.0, 2.0, 3.0}};
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o),
                         doctest::Contains("options.gradcheck_at must be a non-empty batch [M, 2] like the points, got "
                                           "shape [1, 3]"),
                         std::invalid_argument);
    o.gradcheck_at = Tensor{{1.0, INFINITY}};
    CHECK_THROWS_WITH_AS(check_bijector(*b, Tensor{{1.0, 2.0}}, o), doctest::Contains("gradcheck_at must be finite"),
                         std::invalid_argument);
}
