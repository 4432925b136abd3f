#include "flows/radial.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/reduce.hpp"
#include "tensor/stable.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// A radial flow with the given free parameters.
std::unique_ptr<Radial> radial(const Tensor& z0, double alpha_prime, double beta_prime) {
    Rng rng(0);
    auto r = std::make_unique<Radial>(z0.numel(), rng);
    r->z0().value = z0.clone();
    r->alpha_prime().value = Tensor{alpha_prime};
    r->beta_prime().value = Tensor{beta_prime};
    return r;
}

// Points at the given distances from z0 in random directions.
Tensor around(const Tensor& z0, const std::vector<double>& radii, Rng& rng) {
    const std::size_t d = z0.numel();
    Tensor z(Shape{radii.size(), d});
    for (std::size_t i = 0; i < radii.size(); ++i) {
        const Tensor dir = randn(Shape{d}, rng);
        double norm = 0;
        for (const double v : dir.span()) norm += v * v;
        norm = std::sqrt(norm);
        for (std::size_t j = 0; j < d; ++j) z[i * d + j] = z0[j] + radii[i] * dir[j] / norm;
    }
    return z;
}

const double extremes[] = {-30.0, -5.0, 0.0, 5.0, 30.0};

}  // namespace

TEST_CASE("Radial: parameters z0, alpha_prime, beta_prime; shape errors") {
    Rng rng(1);
    Radial r(4, rng);
    const auto named = r.named_parameters();
    REQUIRE(named.size() == 3);
    CHECK(named[0].first == "z0");
    CHECK(named[1].first == "alpha_prime");
    CHECK(named[2].first == "beta_prime");
    CHECK(r.z0().value.shape() == Shape{4});
    CHECK(r.name() == "Radial(D = 4)");
    // Near the identity at initialization: α ≈ ln 2, β̂ ≈ 0.
    CHECK(std::abs(r.alpha() - std::log(2.0)) < 0.2);
    CHECK(std::abs(r.beta_hat()) < 0.2);
    CHECK_THROWS_WITH_AS(Radial(0, rng), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(r.forward(Var(Tensor{{1.0, 2.0}})), doctest::Contains("Radial::forward"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(r.inverse(Var(Tensor{1.0, 2.0, 3.0, 4.0})), doctest::Contains("[N, D]"), std::invalid_argument);
}

TEST_CASE("Radial: β̂ > −α and 1 + β̂/(α + r) > 0 for extreme α′, β′") {
    for (const double ap : extremes)
        for (const double bp : extremes) {
            auto f = radial(Tensor{0.0, 0.0}, ap, bp);
            const double alpha = f->alpha(), beta = f->beta_hat();
            CHECK(alpha > 0);
            CHECK(beta > -alpha);
            for (const double r : {0.0, 1e-12, 1e-3, 1.0, 50.0, 1e6}) CHECK(1 + beta / (alpha + r) > 0);
        }
}

TEST_CASE("Radial: forward is z + β̂ h(r)(z − z₀) with the docs/theory.md §4 log-det") {
    auto f = radial(Tensor{0.5, -1.0, 2.0}, 0.3, -0.8);
    const double alpha = f->alpha(), beta = f->beta_hat();
    const Tensor z{{1.0, 0.0, 2.5}, {-3.0, 4.0, 0.0}};
    const Transformed out = f->forward(Var(z));
    for (std::size_t i = 0; i < 2; ++i) {
        double r2 = 0;
        for (std::size_t j = 0; j < 3; ++j) r2 += (z[i * 3 + j] - f->z0().value[j]) * (z[i * 3 + j] - f->z0().value[j]);
        const double r = std::sqrt(r2), h = 1 / (alpha + r);
        for (std::size_t j = 0; j < 3; ++j) {
            const double expected = z[i * 3 + j] + beta * h * (z[i * 3 + j] - f->z0().value[j]);
            CHECK(std::abs(out.value.value()[i * 3 + j] - expected) <= 1e-14);
        }
        const double ld = 2 * std::log(1 + beta * h) + std::log(1 + alpha * beta * h * h);
        CHECK(std::abs(out.log_abs_det_jacobian.value()[i] - ld) <= 1e-14);
    }
}

TEST_CASE("Radial: log-det finite for α′, β′ = ±30 at every radius, and equal to the naive form where that is accurate") {
    for (const std::size_t d : {1, 2, 5})
        for (const double ap : extremes)
            for (const double bp : extremes) {
                Tensor z0 = Tensor::zeros(Shape{d});
                auto f = radial(z0, ap, bp);
                Rng rng(d);
                const Tensor z = around(z0, {0.0, 1e-300, 1e-12, 1e-3, 1.0, 50.0, 1e6}, rng);
                const Transformed out = f->forward(Var(z));
                CAPTURE(d);
                CAPTURE(ap);
                CAPTURE(bp);
                REQUIRE(all_finite(out.value.value()));
                REQUIRE(all_finite(out.log_abs_det_jacobian.value()));
                const Transformed back = f->inverse(out.value);
                REQUIRE(all_finite(back.value.value()));
                CHECK(max_abs_diff(back.log_abs_det_jacobian.value(), -out.log_abs_det_jacobian.value()) <=
                      1e-9 * std::max(1.0, tapeflow::max(tapeflow::abs(out.log_abs_det_jacobian.value())).item()));
                // The naive form is accurate when 1 + β̂h and 1 + αβ̂h² are not small.
                const double alpha = f->alpha(), beta = f->beta_hat();
                for (std::size_t i = 0; i < z.shape()[0]; ++i) {
                    const double r = i == 0 ? 0.0 : std::vector<double>{0.0, 1e-300, 1e-12, 1e-3, 1.0, 50.0, 1e6}[i];
                    const double a = 1 + beta / (alpha + r), b = 1 + alpha * beta / ((alpha + r) * (alpha + r));
                    if (a > 1e-3 && b > 1e-3) {
                        const double naive = static_cast<double>(d - 1) * std::log(a) + std::log(b);
                        CHECK(std::abs(out.log_abs_det_jacobian.value()[i] - naive) <= 1e-10 * std::max(1.0, std::abs(naive)));
                    }
                }
            }
}

TEST_CASE("Radial: at z = z₀ exactly the value, log-det and gradients are finite") {
    for (const std::size_t d : {1, 2, 5}) {
        Rng rng(d);
        const Tensor z0 = randn(Shape{d}, rng);
        auto f = radial(z0, 0.4, -0.7);
        const double alpha = f->alpha(), sigma_beta = stable::softplus(-0.7);
        Tape tape;
        TapeScope scope(tape);
        const Var z = tape.variable(z0.reshape(Shape{1, d}).clone());
        const Transformed out = f->forward(z);
        CHECK(max_abs_diff(out.value.value(), z0.reshape(Shape{1, d})) == 0);
        // r = 0: log|det| = (D − 1) log(σ_β/α) + log(σ_β/α) = D log(σ_β/α), the Jacobian (1 + β̂/α) I.
        const double expected = static_cast<double>(d) * std::log(sigma_beta / alpha);
        CHECK(std::abs(out.log_abs_det_jacobian.value()[0] - expected) <= 1e-14);
        f->zero_grad();
        tape.backward(sum(out.value) + sum(out.log_abs_det_jacobian));
        CHECK(all_finite(z.grad()));
        for (Parameter* p : f->parameters()) CHECK(all_finite(p->grad));
        // dx/dz at z₀ is (σ_β/α) I: every column of Σ_j x_j's gradient is σ_β/α (the log-det's cone
        // point contributes the subgradient 0).
        for (const double g : z.grad().span()) CHECK(std::abs(g - sigma_beta / alpha) <= 1e-14);
        const Transformed back = f->inverse(out.value);
        CHECK(max_abs_diff(back.value.value(), z0.reshape(Shape{1, d})) == 0);
        CHECK(std::abs(back.log_abs_det_jacobian.value()[0] + expected) <= 1e-14);
        tape.backward(sum(back.value) + sum(back.log_abs_det_jacobian));
        CHECK(all_finite(tape.grad(out.value)));
    }
}

TEST_CASE("Radial: inverse round trip near z₀, far away, and with β̂ near −α") {
    for (const std::size_t d : {1, 2, 5})
        for (const double ap : extremes)
            for (const double bp : extremes) {
                Rng rng(d + 3);
                const Tensor z0 = randn(Shape{d}, rng);
                auto f = radial(z0, ap, bp);
                const Tensor z = around(z0, {1e-12, 1e-8, 1e-4, 0.1, 1.0, 7.0, 50.0}, rng);
                const Tensor back = f->inverse(f->forward(Var(z)).value).value.value();
                CAPTURE(d);
                CAPTURE(ap);
                CAPTURE(bp);
                // x is stored in absolute coordinates, so x − z₀ carries a rounding error of ~ε|x|; the
                // inverse magnifies it by 1/(the smallest singular value of the forward's Jacobian),
                // min(ρ, dρr/dr) with ρ = (σ_β + r)/(α + r): up to α/σ_β ≈ e^{60} for α′ = 30, β′ = −30.
                const double alpha = f->alpha(), sigma_beta = stable::softplus(bp);
                const Tensor x = f->forward(Var(z)).value.value();
                for (std::size_t i = 0; i < z.shape()[0]; ++i) {
                    double err = 0, scale = 1, r2 = 0;
                    for (std::size_t j = 0; j < d; ++j) {
                        err = std::max(err, std::abs(back[i * d + j] - z[i * d + j]));
                        scale = std::max({scale, std::abs(z[i * d + j]), std::abs(x[i * d + j])});
                        r2 += (z[i * d + j] - z0[j]) * (z[i * d + j] - z0[j]);
                    }
                    const double r = std::sqrt(r2);
                    const double rho = (sigma_beta + r) / (alpha + r);
                    const double radial_slope = (r * (2 * alpha + r) + alpha * sigma_beta) / ((alpha + r) * (alpha + r));
                    const double condition = 1 / std::min(rho, radial_slope);
                    CHECK(err <= scale * (1e-13 + 8 * std::numeric_limits<double>::epsilon() * condition));
                }
            }
    // Well-conditioned (moderate parameters), the round trip is good to ~1e-15 even at 1e-12 from z₀.
    for (const std::size_t d : {1, 2, 5}) {
        Rng rng(d + 5);
        const Tensor z0 = randn(Shape{d}, rng);
        auto f = radial(z0, 0.2, -0.5);
        const Tensor z = around(z0, {0.0, 1e-12, 1e-8, 1e-4, 0.1, 1.0, 7.0, 50.0}, rng);
        const Tensor back = f->inverse(f->forward(Var(z)).value).value.value();
        CHECK(max_abs_diff(back, z) <= 1e-14 * 50);
    }
}

TEST_CASE("Radial: gradcheck of forward and inverse in D = 1, 2, 5, on both branches of the inverse") {
    for (const std::size_t d : {1, 2, 5})
        for (const double bp : {-2.0, 1.5}) {
            Rng rng(d + 20);
            const Tensor z0 = randn(Shape{d}, rng, 0.0, 0.5);
            auto f = radial(z0, -0.3, bp);
            // Radii on both sides of σ_β: the inverse takes its a > 0 branch near z₀, a ≤ 0 far away.
            const Tensor z = around(z0, {0.02, 0.7, 3.0}, rng);
            const Tensor x = f->forward(Var(z)).value.value();
            auto both = [](const Transformed& t) { return concat({flatten(t.value), t.log_abs_det_jacobian}, 0); };
            const auto fwd = gradcheck([&](const std::vector<Var>& v) { return both(f->forward(v[0])); }, {z},
                                       {.parameters = f->parameters()});
            CHECK_MESSAGE(fwd.ok, "D = " << d << " forward: " << fwd.report);
            const auto inv = gradcheck([&](const std::vector<Var>& v) { return both(f->inverse(v[0])); }, {x},
                                       {.parameters = f->parameters()});
            CHECK_MESSAGE(inv.ok, "D = " << d << " inverse: " << inv.report);
        }
}

TEST_CASE("row_norm: scaled Euclidean norm with the subgradient 0 at the origin") {
    const Tensor v{{3.0, 4.0}, {0.0, 0.0}, {1e200, 1e200}, {1e-200, -1e-200}};
    const Tensor r = row_norm(Var(v)).value();
    CHECK(r[0] == 5.0);
    CHECK(r[1] == 0.0);
    CHECK(std::abs(r[2] / (std::sqrt(2.0) * 1e200) - 1) <= 1e-15);
    CHECK(std::abs(r[3] / (std::sqrt(2.0) * 1e-200) - 1) <= 1e-15);
    CHECK(std::isnan(row_norm(Var(Tensor{{1.0, NAN}, {2.0, 0.0}})).value()[0]));

    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{{3.0, 4.0}, {0.0, 0.0}});
    tape.backward(sum(row_norm(x)));
    CHECK(max_abs_diff(x.grad(), Tensor{{0.6, 0.8}, {0.0, 0.0}}) <= 1e-16);

    const auto g = gradcheck([](const std::vector<Var>& in) { return row_norm(in[0]); },
                             {Tensor{{0.3, -1.2, 2.0}, {-0.7, 0.1, 1e-3}}});
    CHECK_MESSAGE(g.ok, g.report);
    CHECK_THROWS_WITH_AS(row_norm(Var(Tensor{1.0, 2.0})), doctest::Contains("row_norm"), std::invalid_argument);
}

TEST_CASE("Radial: the conformance kit passes in D = 1, 2, 5") {
    ConformanceOptions fine;
    fine.grid_points_1d = 40001;  // the density has a cusp at z₀
    fine.grid_points_2d = 301;
    fine.box_half_width = 7;
    for (const std::size_t d : {1, 2, 5}) {
        INFO("D = " << d);
        Rng rng(40 + d);
        {
            INFO("random initialization, init_std = 1");
            Radial f(d, rng, {.init_std = 1.0});
            CHECK_BIJECTOR(f, randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("strong expansion (β′ = 3), α small (α′ = −2)");
            auto f = radial(randn(Shape{d}, rng, 0.0, 0.5), -2.0, 3.0);
            CHECK_BIJECTOR(f.operator*(), randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("β̂ near −α: strong contraction (β′ = −2)");
            auto f = radial(randn(Shape{d}, rng, 0.0, 0.5), 0.5, -2.0);
            CHECK_BIJECTOR(*f, randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("β̂ very near −α (β′ = −12), points near z₀ and far away (|z| ~ 50)");
            const Tensor z0 = randn(Shape{d}, rng, 0.0, 0.5);
            auto f = radial(z0, 0.5, -12.0);
            ConformanceOptions o = fine;
            // A density spike of height (α/σ_β)^D ~ 1e5^D around z₀, on a ball of radius ~σ_β: no grid
            // resolves it.
            o.density = false;
            // The gradchecks use the first two points: their finite differences (step 1e-6) must not
            // straddle the cone point at z₀, which the points 1e-3 away map to within ~1e-6 of.
            CHECK_BIJECTOR(*f, around(z0, {1.0, 5.0, 1e-3, 0.01, 0.3, 50.0, 60.0}, rng), o);
        }
    }
}
