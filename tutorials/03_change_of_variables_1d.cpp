// 03_change_of_variables_1d: p_y = p_x/|g'| against a histogram, the entropy identity, and a monotone map that learns the CDF by maximizing output entropy
//
// The change-of-variables formula in one dimension (docs/theory.md §1): if y = g(x) with g increasing,
// then p_y(y) = p_x(x)/g'(x) at x = g⁻¹(y). We derive it from the CDF, check it against a histogram
// of a million transformed samples (and watch two classic mistakes fail the same test), check the
// entropy identity H(y) = E[ln g'(x)] + H(x) by Monte Carlo and by quadrature, and then follow Bell
// & Sejnowski (1995): among increasing maps into (0, 1) the output entropy is largest, exactly 0,
// when g is the CDF of x. A small monotone map trained to maximize E[ln g'(x)] finds that CDF.
//
//   ./tapeflow tutorial 03 [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "autograd/var.hpp"
#include "nn/module.hpp"
#include "nn/optimizer.hpp"
#include "nn/progress.hpp"
#include "nn/schedule.hpp"
#include "tensor/random.hpp"
#include "tensor/stable.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

constexpr double pi = std::numbers::pi;

using tutorial::print_indented;

std::string fixed(double v, int digits = 6) { return fmt::format("{:.{}f}", v, digits); }

// 1000000 → "1,000,000".
std::string grouped(std::size_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// ∫_a^b f by composite Simpson on n (even) sub-intervals: error O(h⁴) for smooth f.
template <class F>
double simpson(F&& f, double a, double b, int n) {
    const double h = (b - a) / n;
    double total = f(a) + f(b);
    for (int i = 1; i < n; ++i) total += (i % 2 == 1 ? 4.0 : 2.0) * f(a + i * h);
    return total * h / 3;
}

// ---- The standard normal, p_x of sections 1-3 ------------------------------------------------

double normal_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * pi); }
double normal_log_pdf(double x) { return -0.5 * x * x - 0.5 * std::log(2 * pi); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }
const double normal_entropy = 0.5 * std::log(2 * pi * std::numbers::e);  // H(N(0, 1)) = ½ ln(2πe)

// ---- The map of sections 1-3 -----------------------------------------------------------------

// g(x) = x + a·tanh(b·x): a one-dimensional planar layer (docs/theory.md §3). With a, b > 0 it is
// increasing, g'(x) = 1 + a·b·sech²(b·x) ≥ 1, so it stretches the line most at x = 0, where
// p_x is largest: the bell of N(0, 1) is pulled apart into two humps.
struct TanhMap {
    double a = 2.0, b = 1.5;

    double operator()(double x) const { return x + a * std::tanh(b * x); }
    double derivative(double x) const {
        const double t = std::tanh(b * x);
        return 1 + a * b * (1 - t * t);
    }
    // x = g⁻¹(y): the root of g(x) − y, which lies in [y − a, y + a] since |a·tanh| < a. Newton's
    // method inside that bracket; a step that would leave it is replaced by bisection.
    double inverse(double y) const {
        double lo = y - a, hi = y + a, x = y;
        for (int iteration = 0; iteration < 100; ++iteration) {
            const double residual = (*this)(x) - y;
            if (residual == 0) break;
            (residual > 0 ? hi : lo) = x;
            double next = x - residual / derivative(x);
            if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
            if (next == x || hi - lo <= 4 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(x))) break;
            x = next;
        }
        return x;
    }
};

// The change-of-variables formula, p_y(y) = p_x(x)/|g'(x)| at x = g⁻¹(y) (docs/theory.md §1).
double p_y(const TanhMap& g, double y) {
    const double x = g.inverse(y);
    return normal_pdf(x) / g.derivative(x);
}

// ---- A histogram and the chi-square test ------------------------------------------------------

struct Histogram {
    double lo, hi;
    std::vector<double> counts;  // per bin
    double outside = 0;          // samples below lo or at/above hi
    double total = 0;

    Histogram(double lo_, double hi_, std::size_t bins) : lo(lo_), hi(hi_), counts(bins, 0.0) {}
    double width() const { return (hi - lo) / static_cast<double>(counts.size()); }
    double edge(std::size_t i) const { return lo + static_cast<double>(i) * width(); }
    double centre(std::size_t i) const { return lo + (static_cast<double>(i) + 0.5) * width(); }
    void add(double v) {
        total += 1;
        if (!(v >= lo && v < hi)) {
            outside += 1;
            return;
        }
        const auto i = std::min(counts.size() - 1, static_cast<std::size_t>((v - lo) / width()));
        counts[i] += 1;
    }
    // The density estimate count / (N · width) of bin i.
    double density(std::size_t i) const { return counts[i] / (total * width()); }
};

// Pearson's chi-square of observed counts against expected ones, bin by bin, with the bins whose
// expected count is below 5 pooled into a single cell together with the samples outside the range
// (the usual rule that keeps every cell's (O − E)²/E close to a χ²₁ variable).
struct ChiSquare {
    double chi2 = 0;
    int dof = 0;               // cells − 1: the counts sum to N
    double worst_z = 0;        // the largest |O − E|/√E over the cells
    double threshold() const { return dof + 5 * std::sqrt(2.0 * dof); }  // mean + 5 standard deviations
    bool ok() const { return chi2 <= threshold(); }
};

ChiSquare chi_square(const Histogram& h, const std::vector<double>& expected, double expected_outside) {
    ChiSquare r;
    double pooled_observed = h.outside, pooled_expected = expected_outside;
    int cells = 0;
    auto add_cell = [&](double observed, double expect) {
        const double d = observed - expect;
        r.chi2 += d * d / expect;
        r.worst_z = std::max(r.worst_z, std::abs(d) / std::sqrt(expect));
        ++cells;
    };
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        if (expected[i] < 5) {
            pooled_observed += h.counts[i];
            pooled_expected += expected[i];
        } else {
            add_cell(h.counts[i], expected[i]);
        }
    }
    if (pooled_expected > 0) add_cell(pooled_observed, pooled_expected);
    r.dof = cells - 1;
    return r;
}

// A histogram as a staircase line for the SVG figures.
void staircase(const Histogram& h, std::vector<double>& xs, std::vector<double>& ys) {
    xs.clear();
    ys.clear();
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        xs.push_back(h.edge(i));
        ys.push_back(h.density(i));
        xs.push_back(h.edge(i + 1));
        ys.push_back(h.density(i));
    }
}

// ---- The two-component mixture, p_x of sections 4-6 ------------------------------------------

// p_x = 0.3·N(−2, 0.5²) + 0.7·N(1, 1): a narrow mode and a wide one, so "put the steep part of g
// where the data are" is visible at a glance. Its CDF is exact: F(x) = Σ_k π_k Φ((x − μ_k)/σ_k).
struct Mixture {
    double weight[2] = {0.3, 0.7};
    double mean[2] = {-2.0, 1.0};
    double stddev[2] = {0.5, 1.0};

    double log_pdf(double x) const {
        double component[2];
        for (int k = 0; k < 2; ++k)
            component[k] = std::log(weight[k]) + normal_log_pdf((x - mean[k]) / stddev[k]) - std::log(stddev[k]);
        return stable::log_add_exp(component[0], component[1]);
    }
    double pdf(double x) const { return std::exp(log_pdf(x)); }
    double cdf(double x) const {
        return weight[0] * normal_cdf((x - mean[0]) / stddev[0]) + weight[1] * normal_cdf((x - mean[1]) / stddev[1]);
    }
    double sample(Rng& rng) const {
        const int k = rng.uniform() < weight[0] ? 0 : 1;
        return mean[k] + stddev[k] * rng.normal();
    }
    double overall_mean() const { return weight[0] * mean[0] + weight[1] * mean[1]; }
    double overall_stddev() const {
        double second = 0;
        for (int k = 0; k < 2; ++k) second += weight[k] * (stddev[k] * stddev[k] + mean[k] * mean[k]);
        return std::sqrt(second - overall_mean() * overall_mean());
    }
};

// ---- The trainable monotone map of sections 5-6 ----------------------------------------------

using stable::inverse_softplus;  // softplus⁻¹(y) = ln(eʸ − 1)

// g(x) = σ(h(x)) with h(x) = a·x + c + Σ_k v_k·tanh(w_k·x + b_k), where a, v_k, w_k = softplus(free
// parameter) > 0. Then h'(x) = a + Σ_k v_k·w_k·sech²(w_k·x + b_k) > 0: h is increasing for every value
// of the parameters, and σ maps it into (0, 1). The log-derivative of g is
//     ln g'(x) = ln σ'(h) + ln h' = log σ(h) + log σ(−h) + ln h'(x),
// the quantity whose mean, E[ln g'(x)] = H(y) − H(x), training maximizes.
class MonotoneSigmoidMap : public nn::Module {
public:
    // Starts near g(x) = σ(x): a = 1, c = 0, and K small bumps v_k = 0.05 with unit slopes w_k = 1
    // centred at knots spread evenly over [−4, 4].
    explicit MonotoneSigmoidMap(std::size_t units)
        : a_(register_parameter("a", Tensor{inverse_softplus(1.0)})),
          c_(register_parameter("c", Tensor{0.0})),
          v_(register_parameter("v", Tensor::full(Shape{units}, inverse_softplus(0.05)))),
          w_(register_parameter("w", Tensor::full(Shape{units}, inverse_softplus(1.0)))),
          b_(register_parameter("b", Tensor::linspace(4, -4, units))) {}  // b_k = −knot_k

    struct Output {
        Var h;          // h(x) [N]
        Var log_slope;  // ln g'(x) [N]
    };

    // x [N] → h(x) and ln g'(x).
    Output operator()(const Var& x) {
        const Var a = softplus(a_.var()), v = softplus(v_.var()), w = softplus(w_.var());
        const Var t = tanh(unsqueeze(x, 1) * w + b_.var());  // [N, K]: tanh(w_k x_n + b_k)
        const Var h = a * x + c_.var() + sum(t * v, 1);
        const Var dh = a + sum((1.0 - square(t)) * (v * w), 1);  // sech² = 1 − tanh²
        return {h, log_sigmoid(h) + log_sigmoid(-h) + log(dh)};
    }

    // g(x) and g'(x) on plain numbers (nothing recorded), for the checks and figures.
    void evaluate(const std::vector<double>& xs, std::vector<double>& g, std::vector<double>& slope) {
        NoGrad no_grad;
        const Output out = (*this)(Var(Tensor(Shape{xs.size()}, xs)));
        g.resize(xs.size());
        slope.resize(xs.size());
        for (std::size_t i = 0; i < xs.size(); ++i) {
            g[i] = stable::sigmoid(out.h.value()[i]);
            slope[i] = std::exp(out.log_slope.value()[i]);
        }
    }

    std::string name() const override { return fmt::format("MonotoneSigmoidMap(K = {})", v_.numel()); }

private:
    Parameter& a_;
    Parameter& c_;
    Parameter& v_;
    Parameter& w_;
    Parameter& b_;
};

// ==============================================================================================

int run(const tutorial::Options& opt) {
    Verifier verifier;
    const std::filesystem::path out_dir(opt.out_dir);
    Rng rng(opt.seed);
    const std::size_t n_samples = opt.quick ? 100'000 : 1'000'000;
    const TanhMap g;

    // ------------------------------------------------------------------------------------------
    verifier.section("The change-of-variables formula");
    fmt::print(
        "x ~ N(0, 1) and y = g(x) = x + {}·tanh({}·x), an increasing map (g' = 1 + {}·sech²({}x) ≥ 1).\n"
        "Its CDF gives the density of y in two lines (docs/theory.md §1):\n"
        "    F_y(y) = P(g(x) ≤ y) = P(x ≤ g⁻¹(y)) = F_x(g⁻¹(y))\n"
        "    p_y(y) = d/dy F_x(g⁻¹(y)) = p_x(g⁻¹(y)) · (g⁻¹)'(y) = p_x(x) / g'(x),   x = g⁻¹(y)\n"
        "g stretches the line by g' around x, so the same probability is spread over g' times more\n"
        "room: the density drops by that factor. g has no closed-form inverse; g⁻¹(y) is a bracketed\n"
        "Newton solve. The formula against a central difference of F_y(y) = Φ(g⁻¹(y)):\n\n",
        g.a, g.b, g.a * g.b, g.b);
    {
        std::vector<std::vector<std::string>> rows;
        double worst_relative = -1, worst_y = 0, worst_formula = 0, worst_from_cdf = 0;
        for (double y : {-4.0, -2.5, -1.0, 0.0, 0.5, 2.0, 3.5}) {
            const double eps = 1e-5;
            const double from_cdf =
                (normal_cdf(g.inverse(y + eps)) - normal_cdf(g.inverse(y - eps))) / (2 * eps);
            const double formula = p_y(g, y);
            if (std::abs(formula - from_cdf) / formula > worst_relative) {
                worst_relative = std::abs(formula - from_cdf) / formula;
                worst_y = y;
                worst_formula = formula;
                worst_from_cdf = from_cdf;
            }
            rows.push_back({fmt::format("{:g}", y), fixed(g.inverse(y)), fixed(formula, 10), fixed(from_cdf, 10)});
        }
        print_indented(plot::ascii_table({"y", "x = g⁻¹(y)", "p_x(x)/g'(x)", "dF_y/dy (central diff.)"}, rows));
        fmt::print("\n");
        verifier.check_close(fmt::format("p_y(y), worst of the 7 (y = {:g})", worst_y), {"p_x/g'", worst_formula},
                             {"dF_y/dy", worst_from_cdf}, 1e-8, 0);
    }
    double worst_round_trip = 0;
    for (double y = -12; y <= 12; y += 0.01) worst_round_trip = std::max(worst_round_trip, std::abs(g(g.inverse(y)) - y));
    verifier.check_error("max |g(g⁻¹(y)) − y| on [−12, 12]", worst_round_trip, 1e-14);
    const double total_mass = simpson([&](double y) { return p_y(g, y); }, -14, 14, 8000);
    verifier.check_close("∫ p_y dy on [−14, 14]", {"Simpson", total_mass}, {"exact", 1.0}, 0, 1e-10);

    // ------------------------------------------------------------------------------------------
    verifier.section("Brute force: a histogram of transformed samples");
    Histogram hist(-6, 6, 48);
    std::vector<double> xs_samples(n_samples);
    for (std::size_t n = 0; n < n_samples; ++n) {
        xs_samples[n] = rng.normal();
        hist.add(g(xs_samples[n]));
    }
    // Three candidate densities for y. Only the first is the change of variables; the other two are
    // the classic mistakes, each normalized over the line so that only its shape is on trial.
    struct Candidate {
        std::string name;
        double (*density)(const TanhMap&, double);
        double normalizer = 1;
        std::vector<double> expected;
        double expected_outside = 0;
        ChiSquare test;
    };
    std::vector<Candidate> candidates = {
        {"p_x(x) / g'(x)    (change of variables)", [](const TanhMap& m, double y) { return p_y(m, y); }},
        {"p_x(x)            (Jacobian forgotten)", [](const TanhMap& m, double y) { return normal_pdf(m.inverse(y)); }},
        {"p_x(x) · g'(x)    (Jacobian upside down)",
         [](const TanhMap& m, double y) {
             const double x = m.inverse(y);
             return normal_pdf(x) * m.derivative(x);
         }},
    };
    for (Candidate& c : candidates) {
        auto density = [&](double y) { return c.density(g, y); };
        c.normalizer = simpson(density, -14, 14, 8000);
        // E_i = N ∫_bin p: Simpson on 16 sub-intervals per bin, so the comparison carries no
        // "density at the bin centre" approximation error.
        double inside = 0;
        for (std::size_t i = 0; i < hist.counts.size(); ++i) {
            const double p = simpson(density, hist.edge(i), hist.edge(i + 1), 16) / c.normalizer;
            c.expected.push_back(static_cast<double>(n_samples) * p);
            inside += p;
        }
        c.expected_outside = static_cast<double>(n_samples) * (1 - inside);
        c.test = chi_square(hist, c.expected, c.expected_outside);
    }
    fmt::print(
        "{} samples x ~ N(0, 1), pushed through g, binned into {} bins of width {} on [{}, {}]. The\n"
        "expected count of bin i is E_i = N·∫_bin p_y (Simpson inside the bin). Every fifth bin:\n\n",
        grouped(n_samples), hist.counts.size(), hist.width(), hist.lo, hist.hi);
    {
        std::vector<std::vector<std::string>> rows;
        for (std::size_t i = 2; i < hist.counts.size(); i += 5) {
            const double expected_density = candidates[0].expected[i] / (static_cast<double>(n_samples) * hist.width());
            rows.push_back({fmt::format("{:.3f}", hist.centre(i)), fmt::format("{:.0f}", hist.counts[i]),
                            fmt::format("{:.1f}", candidates[0].expected[i]), fixed(hist.density(i), 5),
                            fixed(expected_density, 5), fixed(p_y(g, hist.centre(i)), 5)});
        }
        print_indented(
            plot::ascii_table({"bin centre", "count O", "expected E", "O/(N·h)", "E/(N·h)", "p_y(centre)"}, rows));
    }
    fmt::print(
        "\nPearson's χ² = Σ (O − E)²/E over the bins (those with E < 5 pooled with the samples outside\n"
        "the range) is ≈ dof ± √(2·dof) when the formula is right: each term is one squared standard\n"
        "normal. The same test for the right formula and the two classic mistakes:\n\n");
    {
        std::vector<std::vector<std::string>> rows;
        for (const Candidate& c : candidates)
            rows.push_back({c.name, fmt::format("{:.1f}", c.test.chi2), fmt::format("{}", c.test.dof),
                            fmt::format("{:.1f}", c.test.threshold()), fmt::format("{:.2f}", c.test.worst_z)});
        print_indented(plot::ascii_table({"density of y", "χ²", "dof", "dof + 5√(2·dof)", "max |O − E|/√E"}, rows));
    }
    fmt::print("\n");
    verifier.check("change of variables: χ² within sampling error", candidates[0].test.ok(),
                   fmt::format("χ² = {:.1f} ≤ {:.1f}", candidates[0].test.chi2, candidates[0].test.threshold()));
    verifier.check("… and no bin off by more than 5 standard errors", candidates[0].test.worst_z < 5,
                   fmt::format("max |O − E|/√E = {:.2f}", candidates[0].test.worst_z));
    verifier.check("Jacobian forgotten: rejected", !candidates[1].test.ok(),
                   fmt::format("χ² = {:.0f}", candidates[1].test.chi2));
    verifier.check("Jacobian upside down: rejected", !candidates[2].test.ok(),
                   fmt::format("χ² = {:.0f}", candidates[2].test.chi2));
    {
        std::vector<double> ys, formula, forgot, upside;
        for (int i = 0; i <= 600; ++i) {
            const double y = -6 + 12.0 * i / 600;
            ys.push_back(y);
            formula.push_back(p_y(g, y));
            forgot.push_back(candidates[1].density(g, y) / candidates[1].normalizer);
            upside.push_back(candidates[2].density(g, y) / candidates[2].normalizer);
        }
        fmt::print("The formula p_y(y) on [−6, 6]:\n\n");
        print_indented(plot::ascii_plot(ys, formula, 64, 10));

        plot::Figure fig(1, 2, 430, 340);
        std::vector<double> xs, gx, px;
        for (int i = 0; i <= 400; ++i) {
            const double x = -4 + 8.0 * i / 400;
            xs.push_back(x);
            gx.push_back(g(x));
            px.push_back(normal_pdf(x));
        }
        plot::Axes& left = fig.axes(0, 0);
        left.set_title(fmt::format("the map y = x + {}·tanh({}·x)", g.a, g.b)).set_xlabel("x").set_ylabel("y");
        left.line(xs, gx, {.colour = "#1f77b4", .label = "y = g(x)"});
        left.line(xs, xs, {.colour = "#999999", .width = 1, .dashed = true, .label = "y = x"});
        left.legend();
        std::vector<double> hx, hy;
        staircase(hist, hx, hy);
        plot::Axes& right = fig.axes(0, 1);
        right.set_title(fmt::format("density of y: {} samples vs formulas", grouped(n_samples)))
            .set_xlabel("y")
            .set_ylabel("density");
        right.line(hx, hy, {.colour = "#bbbbbb", .width = 3.5, .label = "histogram of g(x)"});
        right.line(ys, formula, {.colour = "#1f77b4", .width = 1.4, .label = "p_x / g'  (right)"});
        right.line(ys, forgot, {.colour = "#d62728", .width = 1.2, .dashed = true, .label = "p_x  (no Jacobian)"});
        right.line(ys, upside, {.colour = "#ff7f0e", .width = 1.2, .dashed = true, .label = "p_x · g'  (upside down)"});
        right.set_ylim(0, 0.45).legend();
        const std::string path = (out_dir / "density.svg").string();
        fig.save(path);
        fmt::print("\nFigure: {}\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The entropy identity H(y) = E[ln g'(x)] + H(x)");
    // Quadrature of −∫ p_y ln p_y over y: p_y comes from the formula through g⁻¹, nothing else.
    const double entropy_y_quadrature = simpson(
        [&](double y) {
            const double p = p_y(g, y);
            return p > 0 ? -p * std::log(p) : 0.0;
        },
        -14, 14, 8000);
    // The identity with E[ln g'] by quadrature in x, and by Monte Carlo over the samples.
    const double mean_log_slope_quadrature =
        simpson([&](double x) { return normal_pdf(x) * std::log(g.derivative(x)); }, -12, 12, 8000);
    double sum = 0, sum_sq = 0;
    for (double x : xs_samples) {
        const double l = std::log(g.derivative(x));
        sum += l;
        sum_sq += l * l;
    }
    const double n_d = static_cast<double>(n_samples);
    const double mean_log_slope_mc = sum / n_d;
    const double standard_error = std::sqrt((sum_sq / n_d - mean_log_slope_mc * mean_log_slope_mc) / (n_d - 1));
    fmt::print(
        "Entropy is −E[ln p]. With p_y(g(x)) = p_x(x)/g'(x):\n"
        "    H(y) = −E[ln p_y(g(x))] = −E[ln p_x(x)] + E[ln g'(x)] = H(x) + E[ln g'(x)]\n"
        "The entropy of y is the entropy of x plus the average log-stretch. H(x) = ½ ln(2πe) = {:.10f}.\n\n",
        normal_entropy);
    print_indented(plot::ascii_table(
        {"", "value"},
        {{"E[ln g'(x)], Monte Carlo over the samples", fmt::format("{:.6f} ± {:.6f} (1 s.e.)", mean_log_slope_mc, standard_error)},
         {"E[ln g'(x)], quadrature ∫ p_x ln g' dx", fixed(mean_log_slope_quadrature, 10)},
         {"H(x) + E[ln g'] (quadrature)", fixed(normal_entropy + mean_log_slope_quadrature, 10)},
         {"H(y) = −∫ p_y ln p_y dy (quadrature in y)", fixed(entropy_y_quadrature, 10)}}));
    fmt::print("\n");
    verifier.check_close("H(y), quadrature in x", {"H(x) + E[ln g']", normal_entropy + mean_log_slope_quadrature},
                         {"−∫ p_y ln p_y", entropy_y_quadrature}, 0, 1e-9);
    verifier.check_close("H(y), Monte Carlo (±4 s.e.)", {"H(x) + E[ln g']", normal_entropy + mean_log_slope_mc},
                         {"−∫ p_y ln p_y", entropy_y_quadrature}, 0, 4 * standard_error);
    fmt::print(
        "\ng' ≥ 1 everywhere, so E[ln g'] > 0: stretching spreads probability out and entropy grows.\n"
        "The identity never needs p_y: only g' at samples of x. Flows are trained on exactly that.\n");

    // ------------------------------------------------------------------------------------------
    verifier.section("Into (0, 1): output entropy is largest at the CDF");
    const Mixture mix;
    const double entropy_x = simpson([&](double x) { return -mix.pdf(x) * mix.log_pdf(x); }, -12, 12, 12000);
    fmt::print(
        "From here on p_x is the mixture 0.3·N(−2, 0.5²) + 0.7·N(1, 1), whose CDF F is exact. Its\n"
        "entropy has no closed form; by quadrature H(x) = {:.10f}.\n\n"
        "Let g map R increasingly onto (0, 1). Then y lives in (0, 1), where no density has more\n"
        "entropy than the uniform (H = 0), so H(x) + E[ln g'(x)] = H(y) ≤ 0. And g' ≥ 0 with ∫ g' = 1\n"
        "is itself a density on R, so\n"
        "    −H(y) = −E[ln g'(x)] − H(x) = E[ln p_x(x) − ln g'(x)] = KL(p_x ‖ g') ≥ 0,\n"
        "zero exactly when g' = p_x, i.e. g = F (the probability integral transform). Bell & Sejnowski\n"
        "(1995): output entropy is largest when the steep part of g sits on the dense part of p_x.\n"
        "H(y) from the identity (E[ln g'] by quadrature), against the plug-in entropy of a\n"
        "200-bin histogram of {} samples y = g(x) (with the Miller–Madow bias correction):\n\n",
        entropy_x, grouped(n_samples));
    struct SquashingMap {
        std::string label;  // short, for the checks and the legend
        std::string name;
        std::function<double(double)> value;
        std::function<double(double)> log_slope;
    };
    const double m = mix.overall_mean(), s = mix.overall_stddev();
    const std::vector<SquashingMap> maps = {
        {"σ(x)", "σ(x)", [](double x) { return stable::sigmoid(x); },
         [](double x) { return stable::log_sigmoid(x) + stable::log_sigmoid(-x); }},
        {"σ(x/3)", "σ(x/3)", [](double x) { return stable::sigmoid(x / 3); },
         [](double x) { return stable::log_sigmoid(x / 3) + stable::log_sigmoid(-x / 3) - std::log(3.0); }},
        {"Φ((x − m)/s)", fmt::format("Φ((x − {:.2f})/{:.3f})  (moment-matched normal)", m, s),
         [=](double x) { return normal_cdf((x - m) / s); },
         [=](double x) { return normal_log_pdf((x - m) / s) - std::log(s); }},
        {"F(x)", "F(x)  (the CDF of x)", [&](double x) { return mix.cdf(x); }, [&](double x) { return mix.log_pdf(x); }},
    };
    std::vector<double> mixture_samples(n_samples);
    for (double& x : mixture_samples) x = mix.sample(rng);
    std::vector<std::vector<std::string>> rows;
    std::vector<double> identity_entropies, histogram_entropies;
    const double histogram_tolerance = opt.quick ? 0.01 : 0.003;
    for (const SquashingMap& map : maps) {
        const double mean_log_slope =
            simpson([&](double x) { return mix.pdf(x) * map.log_slope(x); }, -12, 12, 12000);
        const double identity = entropy_x + mean_log_slope;
        Histogram out(0, 1, 200);
        for (double x : mixture_samples) out.add(map.value(x));
        // Plug-in entropy −Σ P_i ln(P_i/h), plus the Miller–Madow correction (B − 1)/2N for the
        // downward bias of estimating each P_i from counts.
        double plug_in = 0, occupied = 0;
        for (std::size_t i = 0; i < out.counts.size(); ++i)
            if (out.counts[i] > 0) {
                plug_in -= out.counts[i] / out.total * std::log(out.density(i));
                occupied += 1;
            }
        plug_in += (occupied - 1) / (2 * out.total);
        identity_entropies.push_back(identity);
        histogram_entropies.push_back(plug_in);
        rows.push_back({map.name, fixed(mean_log_slope), fixed(identity), fixed(plug_in)});
    }
    print_indented(plot::ascii_table({"g", "E[ln g'(x)]", "H(y) = H(x) + E[ln g']", "H(y), histogram"}, rows));
    fmt::print("\n");
    for (std::size_t k = 0; k < maps.size(); ++k)
        verifier.check_close(fmt::format("H(y) for g = {}", maps[k].label), {"H(x) + E[ln g']", identity_entropies[k]},
                             {"histogram", histogram_entropies[k]}, 0, histogram_tolerance);
    verifier.check("every map but F: H(y) < 0",
                   std::all_of(identity_entropies.begin(), identity_entropies.end() - 1, [](double h) { return h < -1e-3; }));
    {
        // The probability integral transform: y = F(x) is exactly uniform, so a histogram of it must
        // pass the χ² test against the flat expectation N/B per bin.
        Histogram uniform(0, 1, 20);
        for (double x : mixture_samples) uniform.add(mix.cdf(x));
        const ChiSquare flat = chi_square(uniform, std::vector<double>(20, n_d / 20), 0);
        verifier.check("y = F(x) is uniform: χ² of 20 bins within sampling error", flat.ok(),
                       fmt::format("χ² = {:.1f} ≤ {:.1f}", flat.chi2, flat.threshold()));
    }
    {
        // Output densities by the change of variables, drawn parametrically: the point
        // (g(x), p_x(x)/g'(x)) traces p_y without ever inverting g.
        plot::Figure fig(1, 2, 430, 340);
        plot::Axes& left = fig.axes(0, 0);
        plot::Axes& right = fig.axes(0, 1);
        left.set_title("p_x and increasing maps g: R → (0, 1)").set_xlabel("x");
        right.set_title("the densities of y = g(x)").set_xlabel("y").set_ylabel("p_y(y)");
        const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};
        std::vector<double> xs, px;
        for (int i = 0; i <= 800; ++i) {
            xs.push_back(-6 + 12.0 * i / 800);
            px.push_back(mix.pdf(xs.back()));
        }
        left.line(xs, px, {.colour = "#000000", .width = 2.2, .label = "p_x (mixture)"});
        for (std::size_t k = 0; k < maps.size(); ++k) {
            std::vector<double> gx, ys, py;
            for (double x : xs) {
                gx.push_back(maps[k].value(x));
                ys.push_back(maps[k].value(x));
                py.push_back(std::exp(mix.log_pdf(x) - maps[k].log_slope(x)));
            }
            left.line(xs, gx, {.colour = colours[k], .label = maps[k].label});
            right.line(ys, py,
                       {.colour = colours[k], .label = fmt::format("{}: H(y) = {:.3f}", maps[k].label, identity_entropies[k])});
        }
        left.legend();
        right.set_xlim(0, 1).set_ylim(0, 5).legend();
        const std::string path = (out_dir / "squashing_maps.svg").string();
        fig.save(path);
        fmt::print("Figure: {}\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Bell & Sejnowski's model: a learned logistic");
    fmt::print(
        "Why maximizing H(y) is infomax. Bell & Sejnowski (1995, Sec. 2) ask for the map that passes the\n"
        "most information from x to its output y = g(x) + ν, with a small noise ν that does not depend on\n"
        "x or on the map's weights. The mutual information splits as\n\n"
        "    I(x; y) = H(y) − H(y | x),\n\n"
        "and given x, all that is uncertain about y is ν: H(y | x) = H(ν), the same for every weight.\n"
        "So ∂I/∂w = ∂H(y)/∂w, and in the limit ν → 0 maximizing the information is maximizing the\n"
        "output entropy H(y) = H(x) + E[ln g'(x)], i.e. E[ln g'(x)] (section 3).\n\n"
        "Their neuron is a logistic unit y = σ(w x + w₀), so ln g'(x) = ln w + ln y + ln(1 − y), and the\n"
        "gradient of E[ln g'(x)] is their learning rule (their eqs. 10 and 11):\n\n"
        "    Δw ∝ 1/w + E[x (1 − 2y)],    Δw₀ ∝ E[1 − 2y].\n\n");
    {
        Rng bs_rng(opt.seed + 31);  // its own stream: the sections after this one see the same draws
        const std::size_t bs_batch = 1024, bs_steps = opt.quick ? 600 : 2000;
        // The rule on a batch, against the tape's gradient of the same objective.
        std::vector<double> xs(bs_batch);
        for (double& x : xs) x = mix.sample(bs_rng);
        const double w_test = 0.8, w0_test = 0.3;
        double rule_w = 1 / w_test, rule_w0 = 0;
        for (const double x : xs) {
            const double y = stable::sigmoid(w_test * x + w0_test);
            rule_w += x * (1 - 2 * y) / static_cast<double>(bs_batch);
            rule_w0 += (1 - 2 * y) / static_cast<double>(bs_batch);
        }
        double tape_w = 0, tape_w0 = 0;
        {
            Tape tape;
            TapeScope scope(tape);
            const Var w = tape.variable(Tensor{w_test}), w0 = tape.variable(Tensor{w0_test});
            const Var u = w * Var(Tensor(Shape{bs_batch}, xs)) + w0;
            const Var objective = mean(log(w) + log_sigmoid(u) + log_sigmoid(-u));
            tape.backward(objective);
            tape_w = w.grad().item();
            tape_w0 = w0.grad().item();
        }
        fmt::print("At w = {}, w₀ = {} on a batch of {} draws of the mixture:\n\n", w_test, w0_test, bs_batch);
        verifier.check_close("∂E[ln g']/∂w", {"their rule", rule_w}, {"tape", tape_w}, 1e-12, 1e-14);
        verifier.check_close("∂E[ln g']/∂w₀", {"their rule", rule_w0}, {"tape", tape_w0}, 1e-12, 1e-14);

        // Their training: gradient ascent by the rule on fresh batches, from w = 1, w₀ = 0.
        double w = 1, w0 = 0;
        const nn::CosineAnnealing rate(0.1, bs_steps, 0.0);
        for (std::size_t step = 0; step < bs_steps; ++step) {
            double dw = 1 / w, dw0 = 0;
            for (std::size_t n = 0; n < bs_batch; ++n) {
                const double x = mix.sample(bs_rng), y = stable::sigmoid(w * x + w0);
                dw += x * (1 - 2 * y) / static_cast<double>(bs_batch);
                dw0 += (1 - 2 * y) / static_cast<double>(bs_batch);
            }
            w += rate.at(step) * dw;
            w0 += rate.at(step) * dw0;
        }
        // E[ln g'] of a logistic by quadrature, and its maximum by a grid search refined three times:
        // an independent answer to "which logistic is best for this p_x".
        const auto logistic_objective = [&](double a, double a0) {
            return simpson(
                [&](double x) {
                    const double u = a * x + a0;
                    return mix.pdf(x) * (std::log(a) + stable::log_sigmoid(u) + stable::log_sigmoid(-u));
                },
                -12, 12, 4000);
        };
        double best_w = 1, best_w0 = 0, half_width = 1;
        for (int round = 0; round < 4; ++round, half_width /= 10) {
            double best = -INFINITY, bw = best_w, bw0 = best_w0;
            for (int i = -10; i <= 10; ++i)
                for (int j = -10; j <= 10; ++j) {
                    const double a = best_w + half_width * i / 10, a0 = best_w0 + half_width * j / 10;
                    if (a <= 0) continue;
                    const double v = logistic_objective(a, a0);
                    if (v > best) best = v, bw = a, bw0 = a0;
                }
            best_w = bw, best_w0 = bw0;
        }
        const double h_trained = entropy_x + logistic_objective(w, w0), h_best = entropy_x + logistic_objective(best_w, best_w0);
        fmt::print(
            "\n{} steps of the rule (batches of {}, rate 0.1 annealed to 0 by a cosine), against the best\n"
            "logistic found by a grid search of E[ln g'] by quadrature:\n\n",
            bs_steps, bs_batch);
        print_indented(plot::ascii_table({"", "w", "w₀", "H(y) = H(x) + E[ln g']"},
                                         {{"trained by the rule", fixed(w, 4), fixed(w0, 4), fixed(h_trained, 5)},
                                          {"grid search", fixed(best_w, 4), fixed(best_w0, 4), fixed(h_best, 5)}}));
        fmt::print("\n");
        verifier.check_close("w", {"trained", w}, {"grid search", best_w}, 0, 0.02);
        verifier.check_close("w₀", {"trained", w0}, {"grid search", best_w0}, 0, 0.02);
        verifier.check(fmt::format("the best logistic stays below the ceiling: H(y) < −{}", 0.01), h_best < -0.01,
                       fmt::format("H(y) = {:.5f}, KL(p_x ‖ g') = {:.5f}", h_best, -h_best));
        fmt::print(
            "\nOne logistic is the CDF of a logistic density: it can match p_x's location and scale but\n"
            "not its two modes, so H(y) stays {:.3f} nats below the ceiling 0. A wider monotone map can\n"
            "do better, and the next section trains one.\n\n",
            -h_best);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Learning the CDF by maximizing output entropy");
    const std::size_t units = 12, batch = 1024;
    const std::size_t steps = opt.quick ? 1500 : 5000;
    MonotoneSigmoidMap learned(units);
    fmt::print(
        "A map that is increasing by construction: g(x) = σ(h(x)),\n"
        "    h(x) = a·x + c + Σ_k v_k·tanh(w_k·x + b_k),    a, v_k, w_k = softplus(·) > 0   (K = {})\n"
        "    ln g'(x) = log σ(h) + log σ(−h) + ln(a + Σ_k v_k·w_k·sech²(w_k·x + b_k))\n"
        "Training maximizes E[ln g'(x)] = H(y) − H(x) over fresh batches of {} samples of the mixture:\n"
        "the loss −mean ln g'(x_n) is the negative log-likelihood of the density g', and it is bounded\n"
        "below by H(x) = {:.6f}. Adam, {} steps, learning rate 0.02 annealed to 0 by a cosine.\n\n",
        units, batch, entropy_x, steps);
    std::vector<double> x_grid;
    for (int i = 0; i <= 1200; ++i) x_grid.push_back(-6 + 12.0 * i / 1200);
    std::vector<double> g_before, slope_before;
    learned.evaluate(x_grid, g_before, slope_before);
    // E[ln g'(x)] = ∫ p_x ln g' by Simpson's rule on [−12, 12].
    auto mean_log_slope_of = [&](MonotoneSigmoidMap& map) {
        const int n = 12000;
        std::vector<double> xq, gq, sq;
        for (int i = 0; i <= n; ++i) xq.push_back(-12 + 24.0 * i / n);
        map.evaluate(xq, gq, sq);
        double total = 0;
        for (int i = 0; i <= n; ++i) {
            const double w = (i == 0 || i == n) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0);
            total += w * mix.pdf(xq[i]) * std::log(sq[i]);
        }
        return total * (24.0 / n) / 3;
    };
    const double initial_mean_log_slope = mean_log_slope_of(learned);
    Histogram before(0, 1, 20);
    {
        std::vector<double> gs, unused;
        learned.evaluate(mixture_samples, gs, unused);
        for (double v : gs) before.add(v);
    }

    Rng data_rng = rng.split();
    nn::Adam optimizer(learned.parameters(), {.lr = 0.02});
    const nn::CosineAnnealing schedule(0.02, steps, 0.0);
    Tape& tape = Tape::current();
    tape.clear();
    double last_loss = 0;
    {
        nn::Progress progress(steps, {.label = "infomax", .mode = nn::ProgressMode::plain, .plain_lines = 5});
        Tensor xb(Shape{batch});
        for (std::size_t step = 1; step <= steps; ++step) {
            for (std::size_t n = 0; n < batch; ++n) xb[n] = mix.sample(data_rng);
            optimizer.zero_grad();
            const Var loss = -mean(learned(Var(xb)).log_slope);
            tape.backward(loss);
            schedule.apply(optimizer);
            optimizer.step();
            last_loss = loss.item();
            tape.clear();
            if (!progress.update(step, last_loss)) break;
        }
        progress.finish();
    }
    const double trained_mean_log_slope = mean_log_slope_of(learned);
    fmt::print(
        "\nThe last batch's loss is {:.5f}. A batch average can dip below the bound H(x); its expectation\n"
        "cannot. By quadrature, −E[ln g'] = {:.6f} (before training {:.6f}) against H(x) = {:.6f}.\n\n",
        last_loss, -trained_mean_log_slope, -initial_mean_log_slope, entropy_x);
    verifier.check("training raised E[ln g'(x)] and kept it finite",
                   std::isfinite(trained_mean_log_slope) && trained_mean_log_slope > initial_mean_log_slope,
                   fmt::format("KL(p_x ‖ g') from {:.4f} to {:.6f}", -initial_mean_log_slope - entropy_x,
                               -trained_mean_log_slope - entropy_x));

    // ------------------------------------------------------------------------------------------
    verifier.section("The learned map is the CDF");
    std::vector<double> g_after, slope_after;
    learned.evaluate(x_grid, g_after, slope_after);
    double worst_cdf_gap = 0, worst_at = 0;
    for (std::size_t i = 0; i < x_grid.size(); ++i) {
        const double gap = std::abs(g_after[i] - mix.cdf(x_grid[i]));
        if (gap > worst_cdf_gap) {
            worst_cdf_gap = gap;
            worst_at = x_grid[i];
        }
    }
    Histogram after(0, 1, 20);
    {
        std::vector<double> fresh(n_samples), gs, unused;
        for (double& x : fresh) x = mix.sample(rng);
        learned.evaluate(fresh, gs, unused);
        for (double v : gs) after.add(v);
    }
    auto flatness = [](const Histogram& h) {
        double worst = 0;
        for (std::size_t i = 0; i < h.counts.size(); ++i) worst = std::max(worst, std::abs(h.density(i) - 1));
        return worst;
    };
    const double entropy_y_trained = entropy_x + trained_mean_log_slope;
    // A uniform histogram's bins each hold N/20 samples, with relative standard error √(20/N).
    const double sampling_error = std::sqrt(20.0 / n_d);
    fmt::print(
        "Three ways to see it: the output y = g(x) of fresh samples is uniform (each of 20 bins has\n"
        "density ≈ 1, up to the sampling error ±{:.4f}), g is close to F everywhere, and H(y) is close\n"
        "to its ceiling 0.\n\n",
        sampling_error);
    {
        std::vector<std::vector<std::string>> table;
        for (std::size_t i = 0; i < 20; i += 2)
            table.push_back({fmt::format("[{:.2f}, {:.2f})", before.edge(i), before.edge(i + 1)),
                             fixed(before.density(i), 4), fixed(after.density(i), 4)});
        print_indented(plot::ascii_table({"bin of y (every 2nd)", "density before", "density after"}, table));
    }
    fmt::print("\n");
    const double cdf_tolerance = opt.quick ? 0.02 : 0.01;
    const double flat_tolerance = opt.quick ? 0.15 : 0.06;
    const double entropy_tolerance = opt.quick ? 0.005 : 0.002;
    verifier.check(fmt::format("output histogram flat: max |density − 1| < {}", flat_tolerance),
                   flatness(after) < flat_tolerance,
                   fmt::format("{:.4f} (before training {:.4f})", flatness(after), flatness(before)));
    verifier.check(fmt::format("max |g(x) − F(x)| < {} on [−6, 6]", cdf_tolerance), worst_cdf_gap < cdf_tolerance,
                   fmt::format("{:.4f} at x = {:.2f}", worst_cdf_gap, worst_at));
    verifier.check_at_most("H(y) ≤ 0 (sanity bound, y ∈ [0, 1])", {"H(y)", entropy_y_trained}, {"ceiling", 0.0});
    verifier.check_error("learned map: ceiling 0 − H(y)", -entropy_y_trained, entropy_tolerance);
    {
        plot::Figure fig(1, 2, 430, 340);
        std::vector<double> cdf, pdf;
        for (double x : x_grid) {
            cdf.push_back(mix.cdf(x));
            pdf.push_back(mix.pdf(x));
        }
        plot::Axes& left = fig.axes(0, 0);
        left.set_title("the learned map vs the CDF of x").set_xlabel("x").set_ylabel("y = g(x)");
        left.line(x_grid, g_before, {.colour = "#999999", .dashed = true, .label = "g before training ≈ σ(x)"});
        left.line(x_grid, cdf, {.colour = "#000000", .width = 3.2, .opacity = 0.35, .label = "F(x), exact"});
        left.line(x_grid, g_after, {.colour = "#1f77b4", .label = "g after training"});
        left.legend();
        plot::Axes& right = fig.axes(0, 1);
        right.set_title("its slope g' vs the density p_x").set_xlabel("x").set_ylabel("density");
        right.line(x_grid, slope_before, {.colour = "#999999", .dashed = true, .label = "g' before"});
        right.line(x_grid, pdf, {.colour = "#000000", .width = 3.2, .opacity = 0.35, .label = "p_x, exact"});
        right.line(x_grid, slope_after, {.colour = "#1f77b4", .label = "g' after"});
        right.legend();
        const std::string path = (out_dir / "learned_cdf.svg").string();
        fig.save(path);

        plot::Figure hist_fig(1, 2, 430, 300);
        for (int k = 0; k < 2; ++k) {
            const Histogram& h = k == 0 ? before : after;
            std::vector<double> hx, hy;
            staircase(h, hx, hy);
            plot::Axes& ax = hist_fig.axes(0, k);
            ax.set_title(k == 0 ? "y = g(x) before training (g ≈ σ)" : "y = g(x) after training")
                .set_xlabel("y")
                .set_ylabel("density");
            ax.line(hx, hy, {.colour = k == 0 ? "#999999" : "#1f77b4", .width = 2});
            ax.hline(1, {.colour = "#000000", .width = 1, .dashed = true});
            ax.set_xlim(0, 1).set_ylim(0, 3);
        }
        const std::string hist_path = (out_dir / "output_histogram.svg").string();
        hist_fig.save(hist_path);
        fmt::print("\nFigures: {}\n         {}\n", path, hist_path);
    }

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("03_change_of_variables_1d",
                                "p_y = p_x/|g'| against a histogram, the entropy identity, and a monotone map that "
                                "learns the CDF by maximizing output entropy");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
