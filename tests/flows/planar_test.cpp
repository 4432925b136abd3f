#include "flows/planar.hpp"

#include <cmath>
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

// A planar flow with the given free parameters.
std::unique_ptr<Planar> planar(const Tensor& u, const Tensor& w, double b) {
    Rng rng(0);
    auto p = std::make_unique<Planar>(u.numel(), rng);
    p->u().value = u.clone();
    p->w().value = w.clone();
    p->b().value = Tensor{b};
    return p;
}

// u = k w/‖w‖² + (a part orthogonal to w), so that wᵀu = k exactly up to rounding.
std::unique_ptr<Planar> planar_with_wu(std::size_t d, double k, double b, std::uint64_t seed, double w_scale = 1.0) {
    Rng rng(seed);
    const Tensor w = randn(Shape{d}, rng, 0.0, w_scale);
    Tensor u = randn(Shape{d}, rng);
    const double wu = tapeflow::sum(w * u).item(), ww = tapeflow::sum(w * w).item();
    u = u + w * ((k - wu) / ww);
    return planar(u, w, b);
}

double dot(const Tensor& a, const Tensor& b) { return tapeflow::sum(a * b).item(); }

// Latent points z = z⊥ + t w/‖w‖² − b w/‖w‖², so that wᵀz + b = t exactly up to rounding.
Tensor points_at(Planar& p, const std::vector<double>& ts, Rng& rng, double spread) {
    const Tensor w = p.w().value;
    const double ww = dot(w, w), b = p.b().value[0];
    const std::size_t d = w.numel();
    Tensor z(Shape{ts.size(), d});
    for (std::size_t i = 0; i < ts.size(); ++i) {
        Tensor r = randn(Shape{d}, rng, 0.0, spread);
        r = r + w * ((ts[i] - b - dot(w, r)) / ww);
        for (std::size_t j = 0; j < d; ++j) z[i * d + j] = r[j];
    }
    return z;
}

}  // namespace

TEST_CASE("Planar: parameters are u, w, b with the docs/theory.md §3 initialization") {
    Rng rng(5);
    Planar p(3, rng);
    const auto named = p.named_parameters();
    REQUIRE(named.size() == 3);
    CHECK(named[0].first == "u");
    CHECK(named[1].first == "w");
    CHECK(named[2].first == "b");
    CHECK(p.b().value.shape() == Shape{1});
    CHECK(p.b().value[0] == 0.0);
    CHECK(p.dim() == 3);
    CHECK(p.name() == "Planar(D = 3)");
    // N(0, 0.1²): every entry well inside ±0.5.
    for (const double v : p.u().value.span()) CHECK(std::abs(v) < 0.5);
    CHECK_THROWS_WITH_AS(Planar(0, rng), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Planar(2, rng, {.init_std = -1}), doctest::Contains("init_std"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(p.forward(Var(Tensor{{1.0, 2.0}})), doctest::Contains("Planar::forward"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(p.inverse(Var(Tensor{{1.0, 2.0}})), doctest::Contains("D = 3"), std::invalid_argument);
}

TEST_CASE("Planar: û satisfies wᵀû = softplus(wᵀu) − 1 > −1 (divided by ‖w‖², not ‖w‖)") {
    Rng rng(6);
    for (int trial = 0; trial < 200; ++trial) {
        const std::size_t d = 1 + static_cast<std::size_t>(trial % 5);
        const double scale = trial % 3 == 0 ? 10.0 : 1.0;
        auto p = planar(randn(Shape{d}, rng, 0.0, scale), randn(Shape{d}, rng, 0.0, scale), 0.0);
        const double wu = dot(p->w().value, p->u().value);
        const double expected = stable::softplus(wu) - 1;
        // For wᵀu < −37, e^{wᵀu} < ε/2 and wᵀû rounds to −1; 1 + wᵀû = softplus(wᵀu) stays > 0 until
        // it underflows near wᵀu = −745.
        CHECK(p->w_dot_u_hat() >= -1);
        if (wu > -700) CHECK(p->one_plus_w_dot_u_hat() > 0);
        if (wu > -30) CHECK(p->w_dot_u_hat() > -1);
        CHECK(std::abs(p->w_dot_u_hat() - expected) <= 1e-15 * std::max(1.0, std::abs(wu)));
        // The vector û really has this inner product with w (the ‖w‖ bug would scale it by ‖w‖).
        const double ww = dot(p->w().value, p->w().value);
        CHECK(std::abs(dot(p->w().value, p->u_hat()) - expected) <= 1e-13 * std::max(1.0, std::abs(wu) + ww));
    }
    // ‖w‖ = 3 and wᵀu = −5: û must land on wᵀû = softplus(−5) − 1 = −0.99330…
    auto p = planar(Tensor{-5.0 / 3, 4.0}, Tensor{3.0, 0.0}, 0.0);
    CHECK(std::abs(dot(p->w().value, p->u_hat()) - (stable::softplus(-5.0) - 1)) <= 1e-15);
    CHECK(p->u_hat()[1] == 4.0);  // the part of u orthogonal to w is untouched

    // Adversarial: u = −λ w, wᵀu → −∞. wᵀû rounds to −1 in doubles, but 1 + wᵀû = e^{wᵀu} stays > 0
    // down to wᵀu ≈ −745, where e^{wᵀu} underflows (the map is then not invertible in doubles).
    for (const double lambda : {10.0, 100.0, 140.0}) {
        auto q = planar(Tensor{-lambda, -2 * lambda}, Tensor{1.0, 2.0}, 0.0);
        CHECK(q->w_dot_u_hat() >= -1);
        CHECK(q->one_plus_w_dot_u_hat() > 0);
        CHECK(q->one_plus_w_dot_u_hat() == stable::softplus(-5 * lambda));
        const Transformed f = q->forward(Var(Tensor{{0.0, 0.0}, {1.0, -3.0}}));
        CHECK(all_finite(f.log_abs_det_jacobian.value()));
        CHECK(all_finite(q->inverse(f.value).log_abs_det_jacobian.value()));
    }
    // wᵀu ≫ 0: wᵀû = wᵀu − 1 + softplus(−wᵀu), with no cancellation.
    auto big = planar(Tensor{1e3, 0.0}, Tensor{1.0, 0.0}, 0.0);
    CHECK(big->w_dot_u_hat() == 999.0);
    CHECK(big->u_hat()[0] == 999.0);
}

TEST_CASE("Planar: w = 0 is a translation by u tanh(b)") {
    auto p = planar(Tensor{0.5, -1.0}, Tensor{0.0, 0.0}, 0.3);
    const Transformed f = p->forward(Var(Tensor{{1.0, 2.0}}));
    CHECK(std::abs(f.value.value()[0] - (1.0 + 0.5 * std::tanh(0.3))) <= 1e-15);
    CHECK(std::abs(f.value.value()[1] - (2.0 - std::tanh(0.3))) <= 1e-15);
    CHECK(f.log_abs_det_jacobian.value()[0] == 0.0);
    const Transformed back = p->inverse(f.value);
    CHECK(max_abs_diff(back.value.value(), Tensor{{1.0, 2.0}}) <= 1e-15);
}

TEST_CASE("Planar: forward is z + û tanh(wᵀz + b) with log|det| = log|1 + ûᵀψ|") {
    auto p = planar(Tensor{0.7, -1.3}, Tensor{0.4, 0.9}, -0.2);
    const Tensor z{{0.5, -1.0}, {2.0, 3.0}};
    const Transformed f = p->forward(Var(z));
    const Tensor uh = p->u_hat();
    for (std::size_t i = 0; i < 2; ++i) {
        const double t = 0.4 * z[i * 2] + 0.9 * z[i * 2 + 1] - 0.2;
        const double h = std::tanh(t);
        CHECK(std::abs(f.value.value()[i * 2] - (z[i * 2] + uh[0] * h)) <= 1e-15);
        CHECK(std::abs(f.value.value()[i * 2 + 1] - (z[i * 2 + 1] + uh[1] * h)) <= 1e-15);
        const double psi_u = (1 - h * h) * (0.4 * uh[0] + 0.9 * uh[1]);
        CHECK(std::abs(f.log_abs_det_jacobian.value()[i] - std::log(std::abs(1 + psi_u))) <= 1e-15);
    }
}

TEST_CASE("Planar: the log-det stays finite and exact as wᵀû → −1") {
    // w = (1, 0) and b = 0.4, so t = wᵀz + b = z₁ + 0.4 exactly. On the hyperplane (t = 0),
    // 1 + sech²·wᵀû = softplus(wᵀu): the log-det is log softplus(wᵀu) ≈ wᵀu, far below log ε.
    for (const double wu : {-5.0, -30.0, -50.0, -300.0}) {
        auto p = planar(Tensor{wu, 0.7}, Tensor{1.0, 0.0}, 0.4);
        const Tensor z{{-0.4, 2.0}, {-0.4 + 1e-9, -1.0}, {0.1, 0.0}, {29.6, 5.0}};
        const Transformed f = p->forward(Var(z));
        const Tensor ld = f.log_abs_det_jacobian.value();
        CHECK(all_finite(ld));
        const double expected = std::log(stable::softplus(wu));
        CHECK(std::abs(ld[0] - expected) <= 1e-15 * std::abs(expected));
        CHECK(ld[1] < 0);
        CHECK(ld[2] < 0);
        CHECK(std::abs(ld[3]) <= 1e-20);  // tanh saturated: the map is a translation there
        const Transformed back = p->inverse(f.value);
        const Tensor ild = back.log_abs_det_jacobian.value();
        CHECK(all_finite(ild));
        CHECK(std::abs(ild[0] + expected) <= 1e-15 * std::abs(expected));
    }
}

TEST_CASE("solve_planar_alpha: the root to the precision of doubles, in a handful of iterations") {
    // Against a long-double bisection. The error bound is the equation's own conditioning:
    // ε·(|s| + |c| + |α| + |c sech²|(|α| + |b|)) / g'(α).
    int most = 0;
    double total = 0, count = 0, worst = 0;
    for (const double a : {-40.0, -8.0, -0.5, 0.0, 0.5, 3.0, 30.0, 200.0})
        for (const double b : {-3.0, 0.0, 0.7, 5.0})
            for (double s = -60; s <= 60; s += 0.377) {
                const double c_plus_one = stable::softplus(a), c = c_plus_one - 1;
                const PlanarRoot r = solve_planar_alpha(s, c, c_plus_one, b);
                long double lo = s - std::abs(c) - 1e-9L, hi = s + std::abs(c) + 1e-9L;
                for (int i = 0; i < 200; ++i) {
                    const long double m = (lo + hi) / 2;
                    (m + c * std::tanh(m + static_cast<long double>(b)) - s < 0 ? lo : hi) = m;
                }
                const double ref = static_cast<double>((lo + hi) / 2);
                const double t = r.alpha + b;
                const double sech2 = 1 / (std::cosh(t) * std::cosh(t));
                const double slope = std::tanh(t) * std::tanh(t) + sech2 * c_plus_one;
                const double scale =
                    2.3e-16 * (std::abs(s) + std::abs(c) + std::abs(r.alpha) + std::abs(c * sech2) * (std::abs(r.alpha) + std::abs(b))) /
                    slope;
                worst = std::max(worst, std::abs(r.alpha - ref) / scale);
                most = std::max(most, r.iterations);
                total += r.iterations;
                count += 1;
            }
    CHECK(worst <= 4);
    CHECK(most <= 20);
    CHECK(total / count <= 4);
    // The bracket ends: tanh saturated at ±1 puts the root at s ∓ c to within e^{−2|t|}.
    const PlanarRoot end = solve_planar_alpha(50.0, 3.0, 4.0, 0.0);
    CHECK(std::abs(end.alpha - 47.0) <= 1e-14);
    CHECK(solve_planar_alpha(1.5, 0.0, 1.0, 2.0).alpha == 1.5);
}

TEST_CASE("Planar: inverse round trip far from the origin and near the bracket ends") {
    for (const std::size_t d : {1, 2, 5})
        for (const double wu : {21.0, 3.0, -0.3, -3.0, -8.0}) {
            auto p = planar_with_wu(d, wu, 0.6, 100 + d, 1.5);
            Rng rng(d);
            // t = wᵀz + b from the hyperplane to deep saturation (the root at a bracket end), and
            // points ~50 away from the origin.
            const Tensor z = points_at(*p, {-40, -12, -3, -1, -0.1, 0, 0.1, 1, 3, 12, 40}, rng, 50.0 / std::sqrt(d));
            const Tensor x = p->forward(Var(z)).value.value();
            const Tensor back = p->inverse(Var(x)).value.value();
            for (std::size_t i = 0; i < z.shape()[0]; ++i) {
                double scale = 1, err = 0;
                for (std::size_t j = 0; j < d; ++j) {
                    scale = std::max(scale, std::abs(z[i * d + j]));
                    err = std::max(err, std::abs(back[i * d + j] - z[i * d + j]));
                }
                // The inverse's own conditioning: 1/g' ≤ 1/softplus(wᵀu) near the hyperplane.
                const double cond = 1 / std::min(1.0, stable::softplus(wu));
                CHECK_MESSAGE(err <= 1e-12 * scale * cond, "D = " << d << ", wᵀu = " << wu << ", sample " << i << ": "
                                                                  << err);
            }
            CHECK(p->last_inverse_iterations() <= 20);
        }
}

TEST_CASE("Planar: gradcheck of forward and inverse in D = 1, 2, 5") {
    for (const std::size_t d : {1, 2, 5})
        for (const double wu : {2.0, -2.5}) {
            auto p = planar_with_wu(d, wu, -0.4, 200 + d);
            Rng rng(d + 10);
            const Tensor z = randn(Shape{3, d}, rng);
            const Tensor x = p->forward(Var(z)).value.value();
            auto both = [](const Transformed& t) { return concat({flatten(t.value), t.log_abs_det_jacobian}, 0); };
            const auto fwd = gradcheck([&](const std::vector<Var>& v) { return both(p->forward(v[0])); }, {z},
                                       {.parameters = p->parameters()});
            CHECK_MESSAGE(fwd.ok, "D = " << d << " forward: " << fwd.report);
            const auto inv = gradcheck([&](const std::vector<Var>& v) { return both(p->inverse(v[0])); }, {x},
                                       {.parameters = p->parameters()});
            CHECK_MESSAGE(inv.ok, "D = " << d << " inverse: " << inv.report);
        }
}

TEST_CASE("Planar: the inverse's derivative is the inverse of the forward's Jacobian") {
    auto p = planar_with_wu(3, -2.0, 0.3, 17);
    const Tensor z{{0.2, -0.5, 1.0}};
    const Tensor x = p->forward(Var(z)).value.value();
    const Tensor Jf = jacobian([&](const Var& v) { return p->forward(v).value; }, z);
    const Tensor Ji = jacobian([&](const Var& v) { return p->inverse(v).value; }, x);
    CHECK(max_abs_diff(matmul(Ji, Jf), Tensor{{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}}) <= 1e-13);
}

TEST_CASE("Planar: the conformance kit passes in D = 1, 2, 5 on every branch") {
    ConformanceOptions fine;
    fine.grid_points_2d = 301;
    fine.box_half_width = 7;
    for (const std::size_t d : {1, 2, 5}) {
        INFO("D = " << d);
        Rng rng(30 + d);
        {
            INFO("random initialization, init_std = 1");
            Planar p(d, rng, {.init_std = 1.0});
            p.b().value = Tensor{0.3};
            CHECK_BIJECTOR(p, randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("wᵀu > 0: expanding, with a steep w");
            auto p = planar_with_wu(d, 3.0, -0.5, 40 + d, 2.0);
            CHECK_BIJECTOR(*p, randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("wᵀu < 0: contracting");
            auto p = planar_with_wu(d, -3.0, 0.5, 50 + d);
            CHECK_BIJECTOR(*p, randn(Shape{24, d}, rng, 0.0, 1.5), fine);
        }
        {
            INFO("wᵀû close to −1, points on and near the hyperplane");
            auto p = planar_with_wu(d, -8.0, 0.2, 60 + d);
            const Tensor z = points_at(*p, {-2, -0.3, -0.01, 0, 1e-6, 0.05, 0.4, 3}, rng, 1.0);
            ConformanceOptions o = fine;
            // The density has a ridge of height 1/softplus(−8) ≈ 3000 but width ~1e-5 along the
            // hyperplane, which no grid here resolves (importance sampling for D = 5 is unbiased).
            o.density = d == 5;
            o.log_det_tol = 1e-7;  // slogdet of a Jacobian with determinant ~3e-4
            CHECK_BIJECTOR(*p, z, o);
        }
        if (d == 1) {
            INFO("wᵀû = softplus(−5) − 1 ≈ −0.993: a density ridge of width ~1e-3 on a fine 1-D grid");
            auto p = planar_with_wu(d, -5.0, 0.2, 61);
            ConformanceOptions o = fine;
            o.grid_points_1d = 400001;
            CHECK_BIJECTOR(*p, randn(Shape{16, d}, rng), o);
        }
        {
            INFO("points ~50 from the origin");
            auto p = planar_with_wu(d, 1.0, 0.1, 70 + d);
            ConformanceOptions o = fine;
            o.density = false;  // independent of the points; checked above
            CHECK_BIJECTOR(*p, randn(Shape{16, d}, rng, 0.0, 50.0 / std::sqrt(d)), o);
        }
    }
}

TEST_CASE("Planar near_identity: wᵀû = 0, û ⊥ w, so log|det| = 0 everywhere and f moves points only a little") {
    Rng rng(11);
    Planar p(2, rng, {.init_std = 0.1, .near_identity = true});
    CHECK(std::abs(p.w_dot_u_hat()) <= 1e-12);
    const Tensor z = randn(Shape{64, 2}, rng);
    NoGrad no_grad;
    const Transformed out = p.forward(Var(z));
    CHECK(max(abs(out.log_abs_det_jacobian.value())).item() <= 1e-12);
    CHECK(max_abs_diff(out.value.value(), z) <= 0.2);  // |û|·|w|·|z| with |û|, |w| ~ 0.1
    // Without it, the same draws start as a contraction: wᵀû ≈ ln 2 − 1.
    Rng same(11);
    Planar plain(2, same, {.init_std = 0.1});
    CHECK(std::abs(plain.w_dot_u_hat() - (std::log(2.0) - 1)) <= 0.05);
    CHECK_THROWS_WITH_AS(Planar(2, rng, {.init_std = 0.0, .near_identity = true}), doctest::Contains("near_identity"),
                         std::invalid_argument);
}
