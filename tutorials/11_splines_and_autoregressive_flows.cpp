// 11_splines_and_autoregressive_flows: rational-quadratic splines (value, slope, monotonicity, the inverse root), MAF/IAF and MADE, conditional flows; spline coupling vs MAF vs RealNVP on 2-D data
//
//   ./tapeflow tutorial 11 [--steps N] [--batch N] [--lr LR] [--layers K] [--hidden H]
//
// What it derives and checks, one section each (the page 11_splines_and_autoregressive_flows.md
// uses the same names; the math is docs/theory.md §9):
//   1. the rational-quadratic spline and its derivative: values by hand at knots, edges, inside bins and
//      in the tails; the analytic slope against a central difference
//   2. monotonicity: a sweep over very uneven splines, and the slope's continuity where the tails join
//   3. the inverse: the quadratic, which root and why (against bisection; the textbook form's 0/0)
//   4. the general triangular map: MAF's Jacobian is exactly lower triangular with diagonal exp(α),
//      so log|det| = Σ α; a coupling is the special case whose "previous coordinates" are a fixed half
//   5. MADE's masks: degrees, the masks they give, and the paths they allow (= the autodiff Jacobian)
//   6. one pass or D passes: MAF's density is one MADE evaluation and its sampling D; IAF the reverse
//      (counted, and timed in CPU seconds)
//   7. a spline coupling flow, MAF and tutorial 07's RealNVP at an equal step budget, on moons and
//      8gaussians (test NLL, CPU cost per step)
//   8. a conditional flow: moons at four rotations given as c, against one flow per rotation
//   9. figures of the fitted densities
// Durkan et al. 2019 (neural spline flows), Papamakarios et al. 2017 (MAF), Kingma et al. 2016 (IAF),
// Germain et al. 2015 (MADE), Winkler et al. 2019 (conditional flows).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/autoregressive.hpp"
#include "flows/conditional.hpp"
#include "flows/coupling.hpp"
#include "flows/datasets.hpp"
#include "flows/distributions.hpp"
#include "flows/evaluation.hpp"
#include "flows/made.hpp"
#include "flows/permutation.hpp"
#include "flows/realnvp.hpp"
#include "flows/spline.hpp"
#include "flows/spline_coupling.hpp"
#include "flows/targets.hpp"
#include "flows/trainer.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/stable.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/model_comparison.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

struct Settings {
    std::size_t steps, batch, layers, hidden, test_points;
    double lr;
    bool quick;
};

Settings spline_settings(const tutorial::Options& opt) {
    Settings s{};
    s.quick = opt.quick;
    s.steps = static_cast<std::size_t>(opt.integer("--steps"));
    s.batch = static_cast<std::size_t>(opt.integer("--batch"));
    s.layers = static_cast<std::size_t>(opt.integer("--layers"));
    s.hidden = static_cast<std::size_t>(opt.integer("--hidden"));
    s.lr = opt.real("--lr");
    s.test_points = opt.quick ? 1000 : 10000;
    return s;
}

// K MAF layers with a reversal between consecutive ones (Papamakarios et al. Sec. 3.2: each layer
// conditions on the coordinates in the other order), on a standard normal base.
std::unique_ptr<flows::Flow> make_maf(std::size_t layers, std::size_t hidden, Rng& rng) {
    auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2));
    for (std::size_t k = 0; k < layers; ++k) {
        if (k > 0) flow->add(flows::Permutation::reverse(2));
        flow->add(std::make_unique<flows::MAF>(2, rng, flows::AutoregressiveOptions{.hidden = {hidden, hidden}}));
    }
    return flow;
}

std::unique_ptr<flows::ConditionalFlow> make_conditional_maf(std::size_t layers, std::size_t hidden, std::size_t context_dim,
                                                             Rng& rng) {
    auto flow = std::make_unique<flows::ConditionalFlow>(std::make_unique<flows::StandardNormal>(2), context_dim);
    for (std::size_t k = 0; k < layers; ++k) {
        if (k > 0) flow->add(flows::Permutation::reverse(2));
        flow->add(std::make_unique<flows::MAF>(
            2, rng, flows::AutoregressiveOptions{.hidden = {hidden, hidden}, .context_dim = context_dim}));
    }
    return flow;
}

// The spline coupling flow of section 7: `couplings` rational-quadratic couplings with alternating
// masks (Durkan et al. 2019 Sec. 3.1), K = 8 bins on [−4, 4] (the data sets lie inside ±4).
constexpr flows::SplineOptions flow_spline{.bins = 8, .bound = 4};

std::unique_ptr<flows::Flow> make_spline_flow(std::size_t couplings, std::size_t hidden, Rng& rng) {
    auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2));
    for (std::size_t k = 0; k < couplings; ++k)
        flow->add(std::make_unique<flows::SplineCoupling>(flows::alternating_mask(2, k % 2),
                                                          std::vector<std::size_t>{hidden, hidden}, rng, flow_spline));
    return flow;
}

// Constant rate, then a linear fall over the last 20% of the steps (tutorial 07's schedule).
flows::TrainOptions training(const Settings& s, std::uint64_t seed) {
    return tutorial::comparison_training(s.steps, s.batch, s.lr, seed);
}

double max_abs_above_diagonal(const Tensor& J) {
    const std::size_t d = J.shape()[0];
    double worst = 0;
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = i + 1; j < d; ++j) worst = std::max(worst, std::abs(J[i * d + j]));
    return worst;
}

// ---- 1-3: the rational-quadratic spline (docs/theory.md §9) ------------------------------------------

// The hand spline: K = 2 on [−1, 1], no floors; widths (1/2, 1/2), heights (1/4, 3/4), knot slopes
// (1, 2, 1), so its values are short fractions (tests/flows/spline_test.cpp pins the same numbers).
constexpr flows::SplineOptions hand_spline{.bins = 2, .bound = 1, .min_bin_width = 0, .min_bin_height = 0, .min_derivative = 0};

Tensor hand_spline_raw() {
    return Tensor{{0.0, 0.0, 0.0, std::log(3.0), stable::inverse_softplus(2) - stable::inverse_softplus(1)}};
}

// g (or g⁻¹) of a 1-D spline at the points u, under no_grad: values and log-derivatives.
struct Evaluated {
    std::vector<double> value, log_derivative;
};
Evaluated evaluate(flows::Bijector& g, const std::vector<double>& u, bool inverse) {
    NoGrad no_grad;
    const Var in(Tensor(Shape{u.size(), 1}, u));
    const flows::Transformed t = inverse ? g.inverse(in) : g.forward(in);
    return {t.value.value().to_vector(), t.log_abs_det_jacobian.value().to_vector()};
}

void section_spline(Verifier& verifier, Rng& rng) {
    verifier.section("The rational-quadratic spline and its derivative");
    fmt::print(
        "K bins on [−B, B] with knots (x⁽ᵏ⁾, y⁽ᵏ⁾) from (−B, −B) to (B, B) and slopes δ⁽ᵏ⁾ > 0 at the knots (1 at\n"
        "±B, where the identity tails take over). In bin k, with w, h its width and height, s = h/w and\n"
        "ξ = (x − x⁽ᵏ⁾)/w (Durkan et al. 2019, eqs. 4-5; docs/theory.md §9):\n\n"
        "    g(x)  = y⁽ᵏ⁾ + h [s ξ² + δ⁽ᵏ⁾ ξ(1−ξ)] / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1−ξ)]\n"
        "    g'(x) = s² [δ⁽ᵏ⁺¹⁾ ξ² + 2s ξ(1−ξ) + δ⁽ᵏ⁾ (1−ξ)²] / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1−ξ)]²\n\n"
        "Widths and heights come from a softmax of raw numbers, the inner slopes from a softplus: any raw\n"
        "vector of 3K − 1 numbers is a valid spline. The hand spline, K = 2 on [−1, 1]: x-knots −1, 0, 1,\n"
        "y-knots −1, −1/2, 1, slopes 1, 2, 1. In the middle of bin 0, ξ = 1/2, s = 1/2:\n"
        "g = −1 + (1/2)(1/8 + 1/4)/(1/2 + 2/4) = −13/16 and g' = (1/4)(2/4 + 1/4 + 1/4)/1 = 1/4; in bin 1\n"
        "(s = 3/2) g(1/2) = −1/2 + (3/2)(3/8 + 2/4)/(3/2) = 3/8 and g' = 3/2.\n\n");
    flows::RationalQuadraticSpline hand(hand_spline_raw(), hand_spline);
    const std::vector<double> z{-0.5, 0.5, 0.0, 1.0, 2.5};
    const std::vector<double> x{-13.0 / 16, 3.0 / 8, -0.5, 1.0, 2.5}, slope{0.25, 1.5, 2.0, 1.0, 1.0};
    const Evaluated e = evaluate(hand, z, false);
    const char* where[] = {"inside bin 0", "inside bin 1", "at the knot 0", "at the edge B", "in the tail"};
    for (std::size_t i = 0; i < z.size(); ++i) {
        verifier.check_close(fmt::format("g({:g}), {}", z[i], where[i]), {"spline", e.value[i]}, {"by hand", x[i]}, 0,
                             1e-15);
        verifier.check_close(fmt::format("g'({:g}), {}", z[i], where[i]), {"exp(log-det)", std::exp(e.log_derivative[i])},
                             {"by hand", slope[i]}, 0, 1e-14);
    }
    // A random spline: the analytic derivative against a central difference of g itself.
    const flows::SplineOptions o{.bins = 6, .bound = 3};
    flows::RationalQuadraticSpline g(randn(Shape{1, 17}, rng) * 1.5, o);
    std::vector<double> points;
    for (int i = 0; i < 25; ++i) points.push_back(-3.9 + 0.31 * i);
    const double step = 1e-5;
    std::vector<double> plus, minus;
    for (double p : points) {
        plus.push_back(p + step);
        minus.push_back(p - step);
    }
    const Evaluated at = evaluate(g, points, false), up = evaluate(g, plus, false), down = evaluate(g, minus, false);
    double worst = 0;
    for (std::size_t i = 0; i < points.size(); ++i) {
        const double central = (up.value[i] - down.value[i]) / (2 * step);
        worst = std::max(worst, std::abs(std::exp(at.log_derivative[i]) - central) / central);
    }
    fmt::print("\nA random spline ({} bins on [−3, 3]), g' from eq. 5 against (g(x + h) − g(x − h)) / 2h, h = 1e-5, at\n"
               "{} points over [−3.9, 3.5]:\n\n", o.bins, points.size());
    verifier.check_error("max relative |g' − central difference|", worst, 1e-6);
    fmt::print("\n");
}

// How far eq. 5 evaluated in doubles may be from δ⁽ᴷ⁾ = 1 one ulp inside B. Near ξ = 1, with ξ = 1 − e,
//     g' = δ⁽ᴷ⁾ + 2e·(s + δ⁽ᴷ⁾ − δ⁽ᴷ⁾(δ⁽ᴷ⁾ + δ⁽ᴷ⁻¹⁾)/s) + O(e²)        (eq. 5 expanded, last bin),
// so g' inherits the error of ξ = (x − x⁽ᴷ⁻¹⁾)/w times |∂g'/∂ξ| ≤ 2(s + δ⁽ᴷ⁾ + δ⁽ᴷ⁾(δ⁽ᴷ⁾ + δ⁽ᴷ⁻¹⁾)/s). The knot
// x⁽ᴷ⁻¹⁾ is a running sum of K widths of total 2B, accurate to (K − 1)ε·2B (Higham, "Accuracy and
// Stability of Numerical Algorithms", eq. 4.4); x itself is one ulp (≤ ε·2B) from B. Hence
//     |g' − 1| ≤ 2(s + 1 + (1 + δ⁽ᴷ⁻¹⁾)/s) · (K + 1)ε·2B / w  +  8ε,
// the 8ε for the rounding of eq. 5 and of exp(log g'). A wrong boundary slope is off by O(1).
double edge_slope_tolerance(flows::RationalQuadraticSpline& g, const flows::SplineOptions& o) {
    NoGrad no_grad;
    const std::size_t k = o.bins;
    const flows::SplineKnots knots = flows::spline_knots(Var(g.raw().value.reshape(Shape{1, 1, 3 * k - 1})), o);
    const Tensor &x = knots.x.value(), &y = knots.y.value(), &d = knots.derivative.value();
    const double w = x[k] - x[k - 1], s = (y[k] - y[k - 1]) / w;
    const double eps = std::numeric_limits<double>::epsilon();
    return 2 * (s + 1 + (1 + d[k - 1]) / s) * static_cast<double>(k + 1) * eps * 2 * o.bound / w + 8 * eps;
}

void section_monotonicity(Verifier& verifier, Rng& rng) {
    verifier.section("Monotonicity");
    fmt::print(
        "Every term of g' is positive when s > 0 and every δ > 0: s² times a positive mix of δ⁽ᵏ⁺¹⁾, s, δ⁽ᵏ⁾\n"
        "over a square. The softmax keeps s > 0 and the softplus δ > 0, whatever the raw numbers, so g is\n"
        "strictly increasing, hence invertible (Durkan et al. Sec. 3.1). A sweep of 8001 points over [−2B, 2B]\n"
        "for three splines with very uneven bins (raw ~ N(0, 3²)):\n\n");
    const flows::SplineOptions o{.bins = 8, .bound = 2};
    const Tensor sweep = Tensor::linspace(-4, 4, 8001);
    const std::vector<double> u = sweep.to_vector();
    for (int trial = 0; trial < 3; ++trial) {
        flows::RationalQuadraticSpline g(randn(Shape{1, 23}, rng) * 3.0, o);
        const Evaluated e = evaluate(g, u, false);
        std::size_t decreasing = 0;
        for (std::size_t i = 1; i < u.size(); ++i) decreasing += e.value[i] > e.value[i - 1] ? 0 : 1;
        const double smallest = std::exp(*std::min_element(e.log_derivative.begin(), e.log_derivative.end()));
        verifier.check(fmt::format("spline {}: g(x_i) < g(x_i+1) at all 8000 steps", trial + 1), decreasing == 0,
                       fmt::format("{} steps not increasing; smallest g' = {:.3g} (floor m_δ = {:g})", decreasing, smallest,
                                   o.min_derivative));
        // The slope at ±B from inside is the boundary δ = 1, the tails' slope: g' is continuous there.
        const Evaluated edge = evaluate(g, {std::nextafter(-2.0, 0.0), std::nextafter(2.0, 0.0)}, false);
        verifier.check_close(fmt::format("spline {}: g' just inside B", trial + 1), {"eq. 5", std::exp(edge.log_derivative[1])},
                             {"tail slope", 1.0}, 0, edge_slope_tolerance(g, o));
    }
    fmt::print("\n");
}

// The bin of y among the y-knots (the last knot ≤ y, within 0 … K − 1), by a plain scan.
std::size_t bin_of(const std::vector<double>& knots, double y) {
    std::size_t k = 0;
    while (k + 2 < knots.size() && knots[k + 1] <= y) ++k;
    return k;
}

// g⁻¹ by bisection on g itself (60 halvings of [−B, B], all points at once): no quadratic involved.
std::vector<double> inverse_by_bisection(flows::Bijector& g, const std::vector<double>& y, double bound) {
    std::vector<double> lo(y.size(), -bound), hi(y.size(), bound), mid(y.size());
    for (int it = 0; it < 60; ++it) {
        for (std::size_t i = 0; i < y.size(); ++i) mid[i] = 0.5 * (lo[i] + hi[i]);
        const Evaluated e = evaluate(g, mid, false);
        for (std::size_t i = 0; i < y.size(); ++i) (e.value[i] < y[i] ? lo[i] : hi[i]) = mid[i];
    }
    for (std::size_t i = 0; i < y.size(); ++i) mid[i] = 0.5 * (lo[i] + hi[i]);
    return mid;
}

void section_spline_inverse(Verifier& verifier, Rng& rng) {
    verifier.section("The inverse: a quadratic, and which root");
    fmt::print(
        "Given y in bin k, multiplying eq. 4 out gives a quadratic a ξ² + b ξ + c = 0 (Durkan et al. appendix A,\n"
        "eqs. 6-8), with κ = δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s:\n\n"
        "    a = h (s − δ⁽ᵏ⁾) + (y − y⁽ᵏ⁾) κ,   b = h δ⁽ᵏ⁾ − (y − y⁽ᵏ⁾) κ,   c = −s (y − y⁽ᵏ⁾) ≤ 0.\n\n"
        "One root lies in [0, 1] (g is monotone on the bin). It is the textbook (−b + √(b² − 4ac)) / 2a, which\n"
        "the library evaluates in the equal form ξ = 2c / (−b − √(b² − 4ac)): no division by a, which is 0 on a\n"
        "straight bin, and no difference of nearly equal numbers when 4ac ≪ b². Both roots at five y of a random\n"
        "spline, against bisection on g (60 halvings, no quadratic):\n\n");
    const flows::SplineOptions o{.bins = 5, .bound = 2};
    flows::RationalQuadraticSpline g(randn(Shape{1, 14}, rng) * 1.5, o);
    const flows::SplineKnots knots = [&] {
        NoGrad no_grad;
        return flows::spline_knots(unsqueeze(g.raw().var(), 0), o);
    }();
    const std::vector<double> xs = knots.x.value().to_vector(), ys = knots.y.value().to_vector(),
                              ds = knots.derivative.value().to_vector();
    const std::vector<double> y{-1.7, -0.6, 0.05, 0.9, 1.8};
    const std::vector<double> reference = inverse_by_bisection(g, y, o.bound);
    fmt::print("    {:>6} {:>4} {:>16} {:>16} {:>16}\n", "y", "bin", "x = x⁽ᵏ⁾ + ξw", "other root as x", "bisection");
    bool other_outside = true;
    double worst = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        const std::size_t k = bin_of(ys, y[i]);
        const double w = xs[k + 1] - xs[k], h = ys[k + 1] - ys[k], s = h / w, dy = y[i] - ys[k];
        const double kappa = ds[k + 1] + ds[k] - 2 * s;
        const double a = h * (s - ds[k]) + dy * kappa, b = h * ds[k] - dy * kappa, c = -s * dy;
        const double root = std::sqrt(b * b - 4 * a * c);
        const double xi = 2 * c / (-b - root), other = (-b - root) / (2 * a);
        other_outside = other_outside && (other < 0 || other > 1);
        worst = std::max(worst, std::abs(xs[k] + xi * w - reference[i]));
        fmt::print("    {:>6.2f} {:>4} {:>16.12f} {:>16.6g} {:>16.12f}\n", y[i], k, xs[k] + xi * w, xs[k] + other * w,
                   reference[i]);
    }
    fmt::print("\n");
    verifier.check_error("max |x from the stable root − bisection| at the five y", worst, 1e-12);
    verifier.check("the other root falls outside its bin (ξ ∉ [0, 1]) at all five", other_outside);
    // The library's inverse over many points, and the round trip through g.
    std::vector<double> many;
    for (int i = 0; i < 400; ++i) many.push_back(rng.uniform(-2, 2));
    const Evaluated inv = evaluate(g, many, true);
    const std::vector<double> bis = inverse_by_bisection(g, many, o.bound);
    double worst_inverse = 0;
    for (std::size_t i = 0; i < many.size(); ++i) worst_inverse = std::max(worst_inverse, std::abs(inv.value[i] - bis[i]));
    verifier.check_error("max |g⁻¹(y) (library) − bisection| over 400 random y", worst_inverse, 1e-12);
    // A straight bin: raw = 0 is the identity (s = δ = 1), so a = 0 and the textbook form is 0/0.
    const double h = 0.5, s = 1, d = 1, dy = 0.3, kappa = 0;
    const double a = h * (s - d) + dy * kappa, b = h * d - dy * kappa, c = -s * dy;
    const double textbook = (-b + std::sqrt(b * b - 4 * a * c)) / (2 * a), stable_root = 2 * c / (-b - std::sqrt(b * b - 4 * a * c));
    fmt::print("\nOn a straight bin (s = δ⁽ᵏ⁾ = δ⁽ᵏ⁺¹⁾ = 1, h = 1/2, y − y⁽ᵏ⁾ = 0.3), a = 0: the textbook form gives {}, the\n"
               "stable form {:.17g}.\n",
               textbook, stable_root);
    verifier.check("textbook root on a straight bin is 0/0 (NaN)", std::isnan(textbook));
    verifier.check_close("stable root on a straight bin", {"2c / (−b − √…)", stable_root}, {"(y − y⁽ᵏ⁾)/h", 0.6}, 0, 1e-15);
    fmt::print("\n");
}

// ---- 4 ---------------------------------------------------------------------------------------------

void section_triangular(Verifier& verifier, Rng& rng) {
    verifier.section("The general triangular map");
    fmt::print(
        "An autoregressive flow transforms coordinate d by an affine map whose shift and log-scale depend\n"
        "on the coordinates before it. With MAF's conditioner reading the data side,\n\n"
        "    x_d = z_d · exp(α_d(x_<d)) + μ_d(x_<d),     z_d = (x_d − μ_d(x_<d)) · exp(−α_d(x_<d)),\n\n"
        "so ∂z_d/∂x_j = 0 for j > d: the Jacobian is lower triangular, its diagonal is exp(−α_d), and\n"
        "log|det ∂z/∂x| = −Σ_d α_d. A coupling layer is the special case where μ_d, α_d read a fixed half of\n"
        "the coordinates (and the other half is copied): triangular after sorting copied-first.\n\n");
    const std::size_t d = 4;
    flows::MAF maf(d, rng, {.hidden = {16, 16}, .activation = nn::Activation::tanh});
    for (Parameter* p : maf.parameters()) p->value = randn(p->value.shape(), rng, 0.0, 0.4);  // away from the identity
    const Tensor x = randn(Shape{1, d}, rng);
    const Tensor J = jacobian([&](const Var& v) { return maf.inverse(v).value; }, x);
    double log_diag = 0;
    for (std::size_t i = 0; i < d; ++i) log_diag += std::log(std::abs(J[i * d + i]));
    double log_det = 0;
    {
        NoGrad no_grad;
        log_det = maf.inverse(Var(x)).log_abs_det_jacobian.item();
    }
    const SignLogDet s = slogdet(J);
    fmt::print("    MAF on D = {}: the autodiff Jacobian ∂z/∂x at a random x\n", d);
    for (std::size_t i = 0; i < d; ++i) {
        fmt::print("      ");
        for (std::size_t j = 0; j < d; ++j) fmt::print("{:>10.4f}", J[i * d + j]);
        fmt::print("\n");
    }
    fmt::print("\n    −Σ α (the layer's log-det) = {:.12f}\n    Σ log|J_dd| (its diagonal)  = {:.12f}\n"
               "    slogdet(J) (LU, all of J)   = {:.12f}\n\n",
               log_det, log_diag, s.log_abs_det);
    verifier.check_error("MAF: max |J_ij| above the diagonal of ∂z/∂x", max_abs_above_diagonal(J), 0);
    verifier.check_close("MAF: log-det", {"−Σ α", log_det}, {"Σ log|diag tape J|", log_diag}, 0, 1e-12);
    verifier.check_close("MAF: log-det", {"−Σ α", log_det}, {"slogdet(tape J)", s.log_abs_det}, 0, 1e-12);

    // The coupling as the special case: with mask (1, 0, 1, 0) rows 0 and 2 of ∂z/∂x are rows of I.
    flows::AffineCoupling coupling(flows::alternating_mask(d, 0), {16}, rng);
    for (Parameter* p : coupling.parameters()) p->value = randn(p->value.shape(), rng, 0.0, 0.4);
    const Tensor Jc = jacobian([&](const Var& v) { return coupling.inverse(v).value; }, x);
    double copied = 0, cross = 0;
    for (std::size_t i : {0u, 2u})
        for (std::size_t j = 0; j < d; ++j) copied = std::max(copied, std::abs(Jc[i * d + j] - (i == j ? 1.0 : 0.0)));
    for (std::size_t i : {1u, 3u})
        for (std::size_t j : {1u, 3u}) cross = std::max(cross, i == j ? 0.0 : std::abs(Jc[i * d + j]));
    fmt::print(
        "    A coupling with mask (1, 0, 1, 0) in the same form: the copied rows 0, 2 of ∂z/∂x are rows of\n"
        "    the identity, and a transformed coordinate depends on no other transformed one (block diagonal\n"
        "    after sorting copied-first): a triangular map with half its conditioners fixed to identity.\n\n");
    verifier.check_error("coupling: max |copied rows of ∂z/∂x − identity rows|", copied, 0);
    verifier.check_error("coupling: max |transformed-on-transformed off-diagonal|", cross, 0);
}

// ---- 5 ---------------------------------------------------------------------------------------------

void section_made(Verifier& verifier, Rng& rng) {
    verifier.section("MADE's masks");
    const std::size_t d = 3;
    flows::MADE made(d, rng, {.hidden = {5}, .params_per_dim = 1, .activation = nn::Activation::tanh});
    for (Parameter* p : made.parameters()) p->value = randn(p->value.shape(), rng, 0.0, 0.5);
    fmt::print(
        "MADE computes every μ_d, α_d in one network pass by masking its weights. Inputs get degrees\n"
        "1 … D, hidden units degrees in 1 … D − 1, and a weight j → k is kept when m(k) ≥ m(j) (into a hidden\n"
        "unit) or m(k) > m(j) (into an output). A path from x_j to output d then needs j ≤ … < d.\n\n"
        "    D = 3, one hidden layer of 5 units, degrees {}\n\n",
        fmt::join(made.hidden_degrees()[0], ", "));
    const Tensor& m0 = made.masks()[0];  // [3, 5]
    const Tensor& m1 = made.masks()[1];  // [5, 3]
    fmt::print("    input → hidden mask (rows x_1..x_3)      hidden → output mask (rows h_1..h_5)\n");
    for (std::size_t r = 0; r < 5; ++r) {
        std::string left = "                ";
        if (r < 3) {
            left = "";
            for (std::size_t k = 0; k < 5; ++k) left += fmt::format("{:>3.0f}", m0[r * 5 + k]);
        }
        std::string right;
        for (std::size_t k = 0; k < 3; ++k) right += fmt::format("{:>3.0f}", m1[r * 3 + k]);
        fmt::print("      {:<40} {}\n", left, right);
    }
    // Paths: (M0 · M1)[j, d] counts the hidden units through which x_j reaches output d.
    const Tensor paths = matmul(m0, m1);
    const Tensor J = jacobian([&](const Var& v) { return made.forward(v); }, randn(Shape{1, d}, rng));  // [3, 3]
    std::size_t disagree = 0, upper_paths = 0;
    fmt::print("\n    paths x_j → output d (M0·M1, transposed to rows = outputs) and the autodiff ∂out_d/∂x_j:\n");
    for (std::size_t out = 0; out < d; ++out) {
        std::string left, right;
        for (std::size_t j = 0; j < d; ++j) {
            const double n_paths = paths[j * d + out];
            left += fmt::format("{:>4.0f}", n_paths);
            right += fmt::format("{:>10.4f}", J[out * d + j]);
            disagree += (n_paths > 0) != (J[out * d + j] != 0) ? 1 : 0;
            upper_paths += j >= out && n_paths > 0 ? 1 : 0;
        }
        fmt::print("      {:<16} {}\n", left, right);
    }
    fmt::print("\n");
    verifier.check("every path allowed by the masks has j < d (no path on or above the diagonal)", upper_paths == 0,
                   fmt::format("{} such paths", upper_paths));
    verifier.check("the autodiff Jacobian is non-zero exactly where the masks leave a path", disagree == 0,
                   fmt::format("{} entries disagree", disagree));
}

// ---- 6 ---------------------------------------------------------------------------------------------

void section_passes(Verifier& verifier, const Settings& s, Rng& rng) {
    verifier.section("One pass or D passes");
    const std::size_t d = 8, n = s.quick ? 256 : 2048, repeats = s.quick ? 2 : 10;
    flows::MAF maf(d, rng, {.hidden = {64, 64}});
    flows::IAF iaf(d, rng, {.hidden = {64, 64}});
    fmt::print(
        "MAF's inverse (data → latent, the density) reads only x: one MADE pass. Its forward (sampling)\n"
        "needs x_<d before x_d: D passes, pass k settling coordinate k. IAF reads z instead, so sampling and\n"
        "the density of its own samples (reverse KL) are one pass, the density of given data D passes.\n"
        "Counted and timed on D = {}, a batch of {} (CPU seconds of {} repeats):\n\n",
        d, n, repeats);
    const Var batch(randn(Shape{n, d}, rng));
    NoGrad no_grad;
    fmt::print("    {:<6} {:>22} {:>22} {:>10}\n", "layer", "inverse (x → z)", "forward (z → x)", "ratio");
    for (flows::AffineAutoregressive* f : {static_cast<flows::AffineAutoregressive*>(&maf),
                                           static_cast<flows::AffineAutoregressive*>(&iaf)}) {
        const bool is_maf = f->kind() == flows::AffineAutoregressive::Kind::maf;
        std::size_t calls[2];
        double seconds[2];
        for (const bool inverse : {true, false}) {
            const std::size_t before = f->made().calls();
            const double start = tutorial::cpu_seconds();
            for (std::size_t r = 0; r < repeats; ++r) (void)(inverse ? f->inverse(batch) : f->forward(batch));
            seconds[inverse ? 0 : 1] = tutorial::cpu_seconds() - start;
            calls[inverse ? 0 : 1] = (f->made().calls() - before) / repeats;
        }
        fmt::print("    {:<6} {:>8} pass(es) {:>6.3f} s {:>8} pass(es) {:>6.3f} s {:>9.1f}×\n", is_maf ? "MAF" : "IAF", calls[0],
                   seconds[0], calls[1], seconds[1], seconds[1] / seconds[0]);
        const std::string name = is_maf ? "MAF" : "IAF";
        verifier.check_close(name + ": MADE passes for the density (inverse)", {"counted", static_cast<double>(calls[0])},
                             {is_maf ? "1" : "D", is_maf ? 1.0 : static_cast<double>(d)}, 0, 0);
        verifier.check_close(name + ": MADE passes for sampling (forward)", {"counted", static_cast<double>(calls[1])},
                             {is_maf ? "D" : "1", is_maf ? static_cast<double>(d) : 1.0}, 0, 0);
    }
    fmt::print(
        "\n(The ratio is about D: each pass costs one MADE evaluation; MAF is the density estimator, IAF\n"
        "the sampler. Timings are CPU time on a shared machine: read the ratios, not the seconds.)\n\n");
}

// ---- 7 ---------------------------------------------------------------------------------------------

struct Fit {
    std::string data, model;
    std::size_t parameters = 0;
    double nll_before = 0, nll = 0, seconds = 0, cpu_ms_per_step = 0;
    Tensor density;  // density_grid on the figure's box
    // ∫ q over the figure's box by the midpoint rule on randomly shifted grids (mass ± mass_error), and
    // the fraction of samples of q that land in the box.
    double mass = 0, mass_error = 0, inside = 0, inside_error = 0;
    std::size_t samples = 0;
};

constexpr double figure_box = 4.0;
std::size_t figure_cells(const Settings& s) { return s.quick ? 80 : 200; }

// ∫ q over the box by flows::shifted_grid_mass: a fixed grid has no error bar, and its error is c·h²
// only once h resolves q, but a spline flow has bins as narrow as 2B·m_w, finer than any affordable
// grid (the fixed 160² grid was off by 1.6e-2 at --quick --seed 1).
constexpr std::size_t grid_shifts = 6;

Fit fit(flows::Flow& flow, const std::string& data, const std::string& model, const Settings& s, const Tensor& test,
        std::uint64_t seed) {
    const tutorial::ComparisonFit c = tutorial::fit_for_comparison(flow, flows::dataset(data), test, training(s, seed));
    Fit f{data, model, c.parameters, c.nll_before, c.nll, c.seconds, c.cpu_ms_per_step};
    f.density = flows::density_grid(flow, figure_box, figure_cells(s));
    Rng shift_rng(seed + 2);
    const flows::BoxMass mass = flows::shifted_grid_mass(flow, figure_box, figure_cells(s), grid_shifts, shift_rng);
    f.mass = mass.mass;
    f.mass_error = mass.standard_error;
    f.samples = 20000;
    Rng sample_rng(seed + 1);
    const flows::BoxMass inside = flows::box_fraction(flow, f.samples, sample_rng, figure_box);
    f.inside = inside.mass;
    f.inside_error = inside.standard_error;
    return f;
}

std::vector<Fit> section_compare(Verifier& verifier, const Settings& s, Rng& rng) {
    verifier.section("Spline coupling, MAF and RealNVP at equal step budgets");
    fmt::print(
        "Three models on each data set, with the same steps ({}), batch ({}), Adam rate ({:g}, falling\n"
        "linearly over the last 20%) and seed for the batches: RealNVP as tutorial 07 builds it ({} couplings,\n"
        "MLP 2 → {} → {} → 4); {} MAF layers with reversals between them (MADE 2 → {} → {} → 2×2); and {}\n"
        "rational-quadratic spline couplings (K = {} bins on [−{:g}, {:g}], MLP 2 → {} → {} → {}: 3K − 1 raw\n"
        "numbers for the one transformed coordinate). Test NLL in nats on {} fresh points (lower is better;\n"
        "the data's entropy bounds it from below); CPU ms per step is training CPU time over the steps.\n\n",
        s.steps, s.batch, s.lr, 2 * s.layers, s.hidden, s.hidden, s.layers, s.hidden, s.hidden, s.layers, flow_spline.bins,
        flow_spline.bound, flow_spline.bound, s.hidden, s.hidden, flows::spline_parameters_per_dim(flow_spline.bins),
        s.test_points);
    std::vector<Fit> fits;
    for (const std::string data : {"moons", "8gaussians"}) {
        Rng test_rng(1000 + fits.size());
        const Tensor test = flows::dataset(data).sample(s.test_points, test_rng);
        auto realnvp = flows::make_realnvp({.dim = 2, .couplings = 2 * s.layers, .hidden = {s.hidden, s.hidden},
                                            .seed = rng.next_u64()});
        fits.push_back(fit(*realnvp, data, "RealNVP", s, test, 7));
        auto maf = make_maf(s.layers, s.hidden, rng);
        fits.push_back(fit(*maf, data, "MAF", s, test, 7));
        auto spline = make_spline_flow(s.layers, s.hidden, rng);
        fits.push_back(fit(*spline, data, "Spline", s, test, 7));
    }
    fmt::print("    {:<11} {:<8} {:>10} {:>14} {:>12} {:>12} {:>8}\n", "data", "model", "parameters", "NLL untrained",
               "test NLL", "CPU ms/step", "wall s");
    for (const Fit& f : fits)
        fmt::print("    {:<11} {:<8} {:>10} {:>14.4f} {:>12.4f} {:>12.2f} {:>8.1f}\n", f.data, f.model, f.parameters,
                   f.nll_before, f.nll, f.cpu_ms_per_step, f.seconds);
    fmt::print("\n");
    for (const Fit& f : fits)
        verifier.check(fmt::format("{} on {}: training lowered the test NLL", f.model, f.data), f.nll < f.nll_before,
                       fmt::format("{:.4f} → {:.4f}", f.nll_before, f.nll));
    // The fitted densities are densities: the mass the density puts on the box is the mass the sampler
    // puts there. Two independent estimates with their standard errors: the shifted grids', and the
    // binomial one of the sample fraction (flows::box_fraction). 5 combined s.e.: the grid's error bar rests on 6 shifts (5 degrees of
    // freedom, P(|t₅| > 5) ≈ 0.004). A density off by a factor, or missing a log-det term, is off by far more.
    fmt::print("∫ q over [−4, 4]²: the midpoint rule on {} randomly shifted {}×{} grids (mean ± s.e.), against the\n"
               "fraction of {} samples of q inside the box:\n\n",
               grid_shifts, figure_cells(s), figure_cells(s), fits.front().samples);
    fmt::print("    {:<11} {:<8} {:>10} {:>10} {:>10}\n", "data", "model", "grid", "± s.e.", "samples");
    for (const Fit& f : fits)
        fmt::print("    {:<11} {:<8} {:>10.5f} {:>10.5f} {:>10.5f}\n", f.data, f.model, f.mass, f.mass_error, f.inside);
    fmt::print("\n");
    for (const Fit& f : fits)
        verifier.check_close(fmt::format("{} on {}: ∫ q over [−4, 4]²: shifted grids vs samples", f.model, f.data),
                             {"grids", f.mass}, {"samples inside", f.inside}, 0, 5 * std::hypot(f.mass_error, f.inside_error));
    return fits;
}

// ---- 8 ---------------------------------------------------------------------------------------------

// Two moons, centred, rotated by θ: R(θ)(x − m), m = (0.5, 0.25) the moons' centre.
Tensor rotated_moons(std::size_t n, double theta, Rng& rng) {
    Tensor x = flows::sample_moons(n, rng);
    const double c = std::cos(theta), s = std::sin(theta);
    for (std::size_t i = 0; i < n; ++i) {
        const double a = x[2 * i] - 0.5, b = x[2 * i + 1] - 0.25;
        x[2 * i] = c * a - s * b;
        x[2 * i + 1] = s * a + c * b;
    }
    return x;
}

// The context of rotation θ: the point (cos θ, sin θ) on the circle, so nearby angles get nearby
// contexts.
Tensor context_of(double theta) { return Tensor{std::cos(theta), std::sin(theta)}; }

struct ConditionalResult {
    std::vector<double> angles;
    std::vector<Tensor> densities;  // the conditional flow's, one per angle
};

ConditionalResult section_conditional(Verifier& verifier, const Settings& s, Rng& rng) {
    verifier.section("A conditional flow");
    const std::vector<double> angles{0.0, std::numbers::pi / 4, std::numbers::pi / 2, 3 * std::numbers::pi / 4};
    fmt::print(
        "One flow for a family: two moons rotated by θ ∈ {{0°, 45°, 90°, 135°}}, with c = (cos θ, sin θ) given to\n"
        "every MADE as an extra input (degree 0: it may reach every output). Trained on all four rotations\n"
        "at once ({} steps of batches mixing them), against four unconditional MAFs, one per rotation, each\n"
        "given the same {} steps (so together four times the conditional flow's budget).\n\n",
        s.steps, s.steps);
    auto conditional = make_conditional_maf(s.layers, s.hidden, 2, rng);
    const flows::ConditionalSampler family = [&angles](std::size_t n, Rng& r) {
        flows::ContextBatch b{Tensor(Shape{n, 2}), Tensor(Shape{n, 2})};
        for (std::size_t i = 0; i < n; ++i) {
            const double theta = angles[r.next_u64() % angles.size()];
            const Tensor x = rotated_moons(1, theta, r);
            b.x[2 * i] = x[0];
            b.x[2 * i + 1] = x[1];
            b.context[2 * i] = std::cos(theta);
            b.context[2 * i + 1] = std::sin(theta);
        }
        return b;
    };
    const flows::TrainResult cr = flows::train_conditional_forward_kl(*conditional, family, training(s, 11));
    ConditionalResult out{angles, {}};
    fmt::print("    {:>8} {:>18} {:>22}\n", "θ", "conditional NLL", "one MAF for this θ");
    double worst_two_ways = 0, worst_mass = 0;
    for (std::size_t k = 0; k < angles.size(); ++k) {
        Rng test_rng(2000 + k);
        const Tensor test = rotated_moons(s.test_points, angles[k], test_rng);
        const Tensor c_rows = broadcast_to(context_of(angles[k]).reshape(Shape{1, 2}), Shape{s.test_points, 2}).clone();
        double nll_conditional = 0;
        {
            NoGrad no_grad;
            nll_conditional = -tapeflow::mean(conditional->log_prob(Var(test), Var(c_rows)).value()).item();
        }
        auto single = make_maf(s.layers, s.hidden, rng);
        const double theta = angles[k];
        flows::train_forward_kl(*single, [theta](std::size_t n, Rng& r) { return rotated_moons(n, theta, r); },
                                training(s, 11 + k));
        const double nll_single = flows::evaluate_nll(*single, test);
        fmt::print("    {:>7.0f}° {:>18.4f} {:>22.4f}\n", angles[k] * 180 / std::numbers::pi, nll_conditional, nll_single);

        // Checks at this context: log p(x | c) by the forward pass at its samples equals the inverse
        // pass, and the density integrates to 1 on a box.
        NoGrad no_grad;
        const flows::FlowSample smp = conditional->sample_and_log_prob(500, context_of(angles[k]), rng);
        const Tensor c500 = broadcast_to(context_of(angles[k]).reshape(Shape{1, 2}), Shape{500, 2}).clone();
        worst_two_ways = std::max(
            worst_two_ways, max_abs_diff(conditional->log_prob(smp.value, Var(c500)).value(), smp.log_prob.value()));
        const std::size_t n = figure_cells(s);
        const Tensor grid = flows::box_grid(figure_box, n);
        const Tensor cg = broadcast_to(context_of(angles[k]).reshape(Shape{1, 2}), Shape{n * n, 2}).clone();
        const Tensor q = tapeflow::exp(conditional->log_prob(Var(grid), Var(cg)).value()).reshape(Shape{n, n});
        const double h = 2 * figure_box / static_cast<double>(n);
        worst_mass = std::max(worst_mass, std::abs(tapeflow::sum(q).item() * h * h - 1));
        out.densities.push_back(q);
    }
    fmt::print("\n    (the conditional flow trained for {:.1f} s)\n\n", cr.seconds);
    verifier.check_error("conditional: max |log p(x|c) forward pass − inverse pass| over 4 × 500 samples", worst_two_ways,
                         1e-10);
    verifier.check_error("conditional: max over the 4 contexts of |∫ p(x|c) dx − 1| on [−4, 4]²", worst_mass, 0.03);
    return out;
}

// ---- 9 ---------------------------------------------------------------------------------------------

void section_figures(Verifier& verifier, const std::vector<Fit>& fits, const ConditionalResult& cond,
                     const std::string& out_dir) {
    verifier.section("Figures");
    std::filesystem::create_directories(out_dir);
    const std::string fitted = (std::filesystem::path(out_dir) / "fitted_densities.svg").string();
    const std::string family = (std::filesystem::path(out_dir) / "conditional_moons.svg").string();
    {
        plot::Figure fig(2, 3, 340, 320);
        fig.title("Fitted densities q(x): RealNVP, MAF and the spline coupling flow, equal step budgets");
        for (std::size_t i = 0; i < fits.size(); ++i) {
            const Fit& f = fits[i];
            const int n = static_cast<int>(f.density.shape()[0]);
            fig.axes(static_cast<int>(i / 3), static_cast<int>(i % 3))
                .heatmap(f.density.span(), n, n, -figure_box, figure_box, -figure_box, figure_box, {.colorbar_label = "q(x)"})
                .set_title(fmt::format("{} on {}: test NLL {:.3f}", f.model, f.data, f.nll))
                .equal_aspect();
        }
        fig.save(fitted);
    }
    {
        plot::Figure fig(1, static_cast<int>(cond.angles.size()), 300, 300);
        fig.title("One conditional MAF, p(x | c) at the four rotations c = (cos θ, sin θ)");
        for (std::size_t k = 0; k < cond.angles.size(); ++k) {
            const int n = static_cast<int>(cond.densities[k].shape()[0]);
            fig.axes(0, static_cast<int>(k))
                .heatmap(cond.densities[k].span(), n, n, -figure_box, figure_box, -figure_box, figure_box, {})
                .set_title(fmt::format("θ = {:.0f}°", cond.angles[k] * 180 / std::numbers::pi))
                .equal_aspect();
        }
        fig.save(family);
    }
    fmt::print("In the terminal, the spline flow on moons and the conditional flow at θ = 90°:\n\n");
    const int n = static_cast<int>(fits[2].density.shape()[0]);
    const int m = static_cast<int>(cond.densities[2].shape()[0]);
    tutorial::print_indented(tutorial::side_by_side(
        {"spline, moons", "conditional, θ = 90°"},
        {plot::ascii_heatmap(fits[2].density.span(), n, n, 40, 16), plot::ascii_heatmap(cond.densities[2].span(), m, m, 40, 16)}));
    fmt::print("\nFigures (SVG):\n    {}\n    {}\n\n", fitted, family);
    verifier.check("figures written", std::filesystem::exists(fitted) && std::filesystem::exists(family), fitted);
}

int run(const tutorial::Options& opt) {
    const Settings s = spline_settings(opt);
    Verifier verifier;
    Rng rng(opt.seed);
    fmt::print("Tutorial 11: rational-quadratic splines, autoregressive flows (MAF, IAF, MADE), conditional flows.\n\n");
    section_spline(verifier, rng);
    section_monotonicity(verifier, rng);
    section_spline_inverse(verifier, rng);
    section_triangular(verifier, rng);
    section_made(verifier, rng);
    section_passes(verifier, s, rng);
    const std::vector<Fit> fits = section_compare(verifier, s, rng);
    const ConditionalResult cond = section_conditional(verifier, s, rng);
    section_figures(verifier, fits, cond, opt.out_dir);
    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("11_splines_and_autoregressive_flows",
                                "rational-quadratic splines (value, slope, inverse root), MAF/IAF and MADE, conditional flows; spline vs MAF vs RealNVP");
    cli.integer("--steps", {"3000", "80"}, {1, 10'000'000}, "training steps of every fit")
        .integer("--batch", "256", {1, 100'000}, "samples per training step")
        .real("--lr", "2e-3", {0, 1, true}, "Adam's learning rate (falling linearly over the last 20% of the steps)")
        .integer("--layers", "4", {1, 64},
                 "MAF layers and spline couplings (RealNVP gets twice as many couplings: its updates are affine)")
        .integer("--hidden", "64", {1, 4096}, "width of the two hidden layers of every MADE and coupling MLP");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
