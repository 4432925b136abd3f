// 01_finite_differences: forward vs central differences, the best step size, and gradcheck catching a wrong backward rule
//
// How do we know a gradient is right? By comparing it with a finite difference. This tutorial
// measures how the error of the forward difference (f(x+ε) − f(x))/ε and the central difference
// (f(x+ε) − f(x−ε))/2ε depends on ε: truncation error falls as ε shrinks (like ε and ε²), rounding
// error grows (like u/ε), and the best ε sits where they meet, near √u and ∛u (u = machine
// epsilon). Then `gradcheck` applies the central difference to a real multi-input function, and
// to a custom op whose backward rule is deliberately wrong, and shows where it points.
//
//   ./tapeflow tutorial 01 [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/random.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

constexpr double u = std::numeric_limits<double>::epsilon();  // 2⁻⁵² ≈ 2.2e-16: the spacing of doubles at 1

// The test function and its first three derivatives, by the chain rule (s = sin x, c = cos x):
// f = eˢ, f' = c·eˢ, f'' = (c² − s)·eˢ, f''' = c·(c² − 3s − 1)·eˢ.
double f(double x) { return std::exp(std::sin(x)); }
double f1(double x) { return std::cos(x) * f(x); }
double f2(double x) { return (std::cos(x) * std::cos(x) - std::sin(x)) * f(x); }
double f3(double x) { return std::cos(x) * (std::cos(x) * std::cos(x) - 3 * std::sin(x) - 1) * f(x); }

// One entry ∂g_i/∂(input)[element] of g(X, W, b) = logsumexp(tanh(X·W + b), axis 1) by the chain rule,
// in plain doubles (no tape): ∂g_i/∂h_ij = s_ij·(1 − t_ij²) with t = tanh h, s = softmax of t's row i.
// input 0 is X (flat element i·k_dim + k), 1 is W (k·j_dim + j), 2 is b (j).
double layer_jacobian_entry(const Tensor& X, const Tensor& W, const Tensor& b, std::size_t i, std::size_t input,
                            std::size_t element) {
    const std::size_t k_dim = W.shape()[0], j_dim = W.shape()[1];
    std::vector<double> t(j_dim), s(j_dim);
    double t_max = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < j_dim; ++j) {
        double h = b[j];
        for (std::size_t k = 0; k < k_dim; ++k) h += X.at({i, k}) * W.at({k, j});
        t[j] = std::tanh(h);
        t_max = std::max(t_max, t[j]);
    }
    double z = 0;
    for (std::size_t j = 0; j < j_dim; ++j) z += s[j] = std::exp(t[j] - t_max);
    auto dg_dh = [&](std::size_t j) { return s[j] / z * (1 - t[j] * t[j]); };
    double entry = 0;
    if (input == 0) {  // X[r, k]: only row r = i of h depends on it
        const std::size_t r = element / k_dim, k = element % k_dim;
        if (r == i)
            for (std::size_t j = 0; j < j_dim; ++j) entry += dg_dh(j) * W.at({k, j});
    } else if (input == 1) {
        const std::size_t k = element / j_dim, j = element % j_dim;
        entry = dg_dh(j) * X.at({i, k});
    } else {
        entry = dg_dh(element);
    }
    return entry;
}

double forward_difference(double x, double eps) { return (f(x + eps) - f(x)) / eps; }
double central_difference(double x, double eps) { return (f(x + eps) - f(x - eps)) / (2 * eps); }

// Least-squares slope of log10(err) against log10(eps) over the points with eps in [lo, hi].
double loglog_slope(const std::vector<double>& eps, const std::vector<double>& err, double lo, double hi) {
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < eps.size(); ++i) {
        if (eps[i] < lo * (1 - 1e-9) || eps[i] > hi * (1 + 1e-9) || !(err[i] > 0)) continue;
        const double lx = std::log10(eps[i]), ly = std::log10(err[i]);
        n += 1;
        sx += lx;
        sy += ly;
        sxx += lx * lx;
        sxy += lx * ly;
    }
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// The cube x³ with a backward rule that is WRONG on purpose: d(x³)/dx = 3x², but this says 3x.
// It is defined exactly as a user defines a new op: a value, the inputs, and a backward rule that
// adds the input's share of the upstream gradient ctx.grad() into the tape.
Var bad_cube(const Var& a) {
    return record("bad_cube", tapeflow::mul(tapeflow::square(a.value()), a.value()), {a}, [](Backward& ctx) {
        const Tensor& x = ctx.input(0);
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), x * 3.0));  // the bug: should be 3·x²
    });
}

// The same op with the right rule: d(x³) = 3x²·dx.
Var cube(const Var& a) {
    return record("cube", tapeflow::mul(tapeflow::square(a.value()), a.value()), {a}, [](Backward& ctx) {
        const Tensor& x = ctx.input(0);
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), tapeflow::square(x) * 3.0));
    });
}

std::size_t argmin(const std::vector<double>& v) {
    return static_cast<std::size_t>(std::min_element(v.begin(), v.end()) - v.begin());
}

std::string sci(double v) { return fmt::format("{:.2e}", v); }

using tutorial::print_indented;

int run(const tutorial::Options& opt) {
    Verifier verifier;
    const double x0 = 1.0;
    const double exact = f1(x0);

    // ------------------------------------------------------------------------------------------
    verifier.section("The function and its exact derivative");
    fmt::print(
        "Our test function is f(x) = exp(sin x) at x = {}. Its derivative by the chain rule is\n"
        "f'(x) = cos x · exp(sin x), the reference every approximation below is measured against.\n"
        "The tape gets the same number (reverse mode is exact up to rounding, not an approximation):\n\n",
        x0);
    Tape& tape = Tape::current();
    tape.clear();
    const Var xv = tape.variable(Tensor::scalar(x0));
    const Var fv = exp(sin(xv));
    tape.backward(fv);
    fmt::print("    f({0})  = {1:.17g}\n    f'({0}) = {2:.17g}   (formula)\n    f'({0}) = {3:.17g}   (tape)\n\n", x0,
               f(x0), exact, xv.grad().item());
    verifier.check_close("f'(x)", {"tape", xv.grad().item()}, {"cos x·exp(sin x)", exact}, 4 * u, 0);
    tape.clear();

    // ------------------------------------------------------------------------------------------
    verifier.section("Forward and central differences: error against eps");
    fmt::print(
        "Taylor: f(x ± ε) = f ± ε f' + ε²/2 f'' ± ε³/6 f''' + …, so\n"
        "    forward  D₊(ε) = (f(x+ε) − f(x))/ε    = f' + ε/2 · f''  + …   truncation error ∝ ε\n"
        "    central  D₀(ε) = (f(x+ε) − f(x−ε))/2ε = f' + ε²/6 · f''' + …  truncation error ∝ ε²\n"
        "But f(x+ε) and f(x) are each rounded (relative error ~u = {:.3g}); their difference loses\n"
        "those digits and dividing by ε magnifies them: rounding error ∝ u·|f|/ε. (x + ε is\n"
        "rounded too, so the step actually taken, (x+ε) − x, is off by up to u|x|/2: an error of the\n"
        "same u/ε kind.) Here f'' = {:.6g}, f''' = {:.6g}. One row per decade:\n\n",
        u, f2(x0), f3(x0));
    std::vector<std::vector<std::string>> rows;
    for (int k = 1; k <= 13; ++k) {
        const double eps = std::pow(10.0, -k);
        const double ef = std::abs(forward_difference(x0, eps) - exact);
        const double ec = std::abs(central_difference(x0, eps) - exact);
        rows.push_back({fmt::format("1e-{:02}", k), fmt::format("{:.2e}", ef), fmt::format("{:.2e}", ec)});
    }
    print_indented(plot::ascii_table({"eps", "forward |D₊ − f'|", "central |D₀ − f'|"}, rows));

    // A fine grid for the figure, the slopes and the best step (points per decade).
    const int per_decade = opt.quick ? 5 : 20;
    std::vector<double> eps_grid, forward_err, central_err;
    for (int i = 0; i <= 12 * per_decade; ++i) {
        const double eps = std::pow(10.0, -1.0 - static_cast<double>(i) / per_decade);
        eps_grid.push_back(eps);
        forward_err.push_back(std::abs(forward_difference(x0, eps) - exact));
        central_err.push_back(std::abs(central_difference(x0, eps) - exact));
    }

    fmt::print("\nThe same on a log–log plot, {} points per decade. Forward error:\n\n", per_decade);
    print_indented(plot::ascii_plot(eps_grid, forward_err, 64, 12, true, true));
    fmt::print("\nCentral error:\n\n");
    print_indented(plot::ascii_plot(eps_grid, central_err, 64, 12, true, true));
    fmt::print(
        "\nRight half (large ε): straight lines of slope 1 (forward) and 2 (central): truncation.\n"
        "Left half (small ε): a noisy line of slope −1 for both: rounding. Measured slopes:\n\n");
    verifier.check_close("forward truncation slope", {"fitted", loglog_slope(eps_grid, forward_err, 1e-6, 1e-3)},
                         {"theory", 1.0}, 0, 0.05);
    verifier.check_close("central truncation slope", {"fitted", loglog_slope(eps_grid, central_err, 1e-4, 1e-2)},
                         {"theory", 2.0}, 0, 0.05);
    verifier.check_close("forward rounding slope", {"fitted", loglog_slope(eps_grid, forward_err, 1e-13, 1e-10)},
                         {"theory", -1.0}, 0, 0.3);
    verifier.check_close("central rounding slope", {"fitted", loglog_slope(eps_grid, central_err, 1e-13, 1e-9)},
                         {"theory", -1.0}, 0, 0.3);

    const std::string figure_path = (std::filesystem::path(opt.out_dir) / "error_vs_eps.svg").string();
    {
        plot::Figure fig(1, 1, 720, 500);
        plot::Axes& ax = fig.axes(0, 0);
        ax.set_log_x().set_log_y().set_xlim(1e-13, 1e-1).set_ylim(1e-14, 1);
        ax.set_title(fmt::format("Finite-difference error of f'({}), f(x) = exp(sin x)", x0));
        ax.set_xlabel("step ε").set_ylabel(fmt::format("|approximation − f'({})|", x0));
        ax.line(eps_grid, forward_err, {.colour = "#1f77b4", .label = "forward (f(x+ε) − f(x)) / ε"});
        ax.line(eps_grid, central_err, {.colour = "#d62728", .label = "central (f(x+ε) − f(x−ε)) / 2ε"});
        // Reference lines, drawn over the data: the leading truncation terms and the rounding bound.
        // Each stops where it would leave the plot or run into the legend.
        std::vector<double> slope1, slope2, rounding;
        for (double e : eps_grid) {
            slope1.push_back(e >= 3e-10 ? std::abs(f2(x0)) / 2 * e : NAN);
            slope2.push_back(e >= 1.5e-7 ? std::abs(f3(x0)) / 6 * e * e : NAN);
            rounding.push_back(e <= 1e-4 ? u * f(x0) / e : NAN);
        }
        ax.line(eps_grid, slope1,
                {.colour = "#0b3c5d", .width = 1.2, .dashed = true, .label = "slope ε¹: |f''| ε / 2"});
        ax.line(eps_grid, slope2,
                {.colour = "#7f0000", .width = 1.2, .dashed = true, .label = "slope ε²: |f'''| ε² / 6"});
        ax.line(eps_grid, rounding, {.colour = "#555555", .width = 1.2, .dashed = true,
                                     .label = "slope ε⁻¹: u |f| / ε (rounding)"});
        ax.vline(std::sqrt(u), {.colour = "#1f77b4", .width = 0.8, .opacity = 0.5});
        ax.vline(std::cbrt(u), {.colour = "#d62728", .width = 0.8, .opacity = 0.5});
        ax.text(std::sqrt(u) * 1.3, 3e-1, "√u", 12).text(std::cbrt(u) * 1.3, 3e-1, "∛u", 12);
        ax.legend();
        fig.save(figure_path);
    }
    fmt::print("\nFigure with reference slopes: {}\n", figure_path);

    // ------------------------------------------------------------------------------------------
    verifier.section("The best step size");
    const std::size_t best_forward = argmin(forward_err), best_central = argmin(central_err);
    const double eps_forward = eps_grid[best_forward], eps_central = eps_grid[best_central];
    const double err_forward = forward_err[best_forward], err_central = central_err[best_central];
    // Each computed f value is off by up to u|f|/2, so each numerator is off by up to u|f|.
    const double model_forward = std::sqrt(2 * u * f(x0) / std::abs(f2(x0)));
    const double model_central = std::cbrt(1.5 * u * f(x0) / std::abs(f3(x0)));
    fmt::print(
        "Each computed f value is off by up to u|f|/2, so each numerator is off by up to u|f|.\n"
        "Total error ≈ truncation + rounding; setting its derivative in ε to zero:\n"
        "    forward: ε|f''|/2 + u|f|/ε      is smallest at ε = √(2u|f|/|f''|)      ~ √u = {:.2g}\n"
        "    central: ε²|f'''|/6 + u|f|/2ε   is smallest at ε = ∛(3u|f|/(2|f'''|))  ~ ∛u = {:.2g}\n"
        "The factors depend on f, and rounding is noisy, so the grid's argmin lands only near\n"
        "them. Measured on the grid, against the model and the rule of thumb:\n\n",
        std::sqrt(u), std::cbrt(u));
    print_indented(plot::ascii_table(
        {"", "best eps (measured)", "model", "rule of thumb", "best error"},
        {{"forward", sci(eps_forward), sci(model_forward), sci(std::sqrt(u)), sci(err_forward)},
         {"central", sci(eps_central), sci(model_central), sci(std::cbrt(u)), sci(err_central)}}));
    fmt::print("\n");
    auto within = [](double measured, double target, double factor) {
        return measured <= target * factor && measured >= target / factor;
    };
    auto versus = [](double measured, double target) {
        return fmt::format("{:.2e} vs {:.2e} (ratio {:.2g})", measured, target, measured / target);
    };
    verifier.check("best forward eps within 30x of √u", within(eps_forward, std::sqrt(u), 30),
                   versus(eps_forward, std::sqrt(u)));
    verifier.check("best central eps within 30x of ∛u", within(eps_central, std::cbrt(u), 30),
                   versus(eps_central, std::cbrt(u)));
    const double best_ratio = err_forward / err_central;
    verifier.check("central beats forward by > 100x", best_ratio > 100,
                   fmt::format("best errors differ by {:.2g}x: ~u^(1/2) vs ~u^(2/3)", best_ratio));
    fmt::print(
        "\nSo a gradient checked by central differences is good to ~{:.0e} relative at best: that is\n"
        "why gradcheck (next) uses ε = 1e-6 and tolerances atol = 1e-5, rtol = 1e-3, far above it.\n",
        err_central / std::abs(exact));

    // ------------------------------------------------------------------------------------------
    verifier.section("gradcheck on a real function");
    Rng rng(opt.seed);
    const Tensor X = randn(Shape{4, 3}, rng);
    const Tensor W = randn(Shape{3, 2}, rng, 0.0, 0.5);
    const Tensor bias = randn(Shape{2}, rng);
    auto layer = [](const std::vector<Var>& in) { return logsumexp(tanh(matmul(in[0], in[1]) + in[2]), 1); };
    fmt::print(
        "gradcheck(f, inputs) builds the full Jacobian twice: analytically, one backward pass per\n"
        "output element (one-hot seed), and numerically, one central difference per input element;\n"
        "then it compares every entry with |analytic − numeric| ≤ atol + rtol·|numeric|. It also\n"
        "checks that backward twice gives identical results and a zero seed gives zero gradients.\n\n"
        "    g(X, W, b) = logsumexp(tanh(X·W + b), axis 1)   X {}, W {}, b {} → output [4]\n"
        "    (matmul, a broadcast add, tanh and a reduction; seed {})\n\n",
        X.shape(), W.shape(), bias.shape(), opt.seed);
    const GradcheckResult good = gradcheck(layer, {X, W, bias});
    print_indented(good.report);
    fmt::print("\n");
    verifier.check("gradcheck passes", good.ok, "all 4 × (12 + 6 + 2) Jacobian entries agree");
    const double worst_by_hand = layer_jacobian_entry(X, W, bias, good.output_element, good.input, good.input_element);
    fmt::print(
        "\nIndependently of gradcheck, its worst entry ∂g_{}/∂({})[{}] by the chain rule on paper: with\n"
        "t = tanh(h), h = X·W + b and s = softmax(t) along the row, ∂g_i/∂h_ij = s_ij·(1 − t_ij²), and\n"
        "∂h_ij/∂X_ik = W_kj, ∂h_ij/∂W_kj = X_ik, ∂h_ij/∂b_j = 1:\n\n",
        good.output_element, std::array{"X", "W", "b"}.at(good.input), good.input_element);
    verifier.check_close("worst entry: backward", {"backward", good.analytic}, {"chain rule", worst_by_hand}, 1e-12, 1e-15);
    verifier.check_close("worst entry: central diff.", {"central diff.", good.numeric}, {"chain rule", worst_by_hand},
                         1e-6, 1e-9);

    // ------------------------------------------------------------------------------------------
    verifier.section("A wrong backward rule, caught");
    const Tensor cx = randn(Shape{3}, rng);
    const Tensor cy = randn(Shape{3}, rng);
    auto with_bad_cube = [](const std::vector<Var>& in) { return sum(bad_cube(in[0]) * sin(in[1])); };
    fmt::print(
        "bad_cube(x) = x³ is defined with record(\"bad_cube\", value, {{x}}, rule) like any user op,\n"
        "but its rule says d(x³)/dx = 3x instead of 3x². We check h(x, y) = sum(bad_cube(x) · sin y) at\n"
        "    x = {}\n    y = {}\n\n",
        to_string(cx), to_string(cy));
    const GradcheckResult bad = gradcheck(with_bad_cube, {cx, cy});
    print_indented(bad.report);
    std::string suspect_line;
    {
        std::istringstream lines(bad.report);
        for (std::string line; std::getline(lines, line);)
            if (line.find("bad_cube") != std::string::npos) suspect_line = line;
    }
    const std::size_t e = bad.input_element;
    fmt::print(
        "\nReading the report: the worst entry (largest error relative to its tolerance) is for input\n"
        "{} (x), element {}. The numeric value 3x²·sin y = {:.10g} is the truth; the analytic\n"
        "{:.10g} equals 3x·sin y: the rule dropped a factor x. The only op that touches x\n"
        "directly is the one to suspect:\n"
        "    {}\n\n",
        bad.input, e, 3 * cx[e] * cx[e] * std::sin(cy[e]), bad.analytic, suspect_line);
    verifier.check("gradcheck reports a failure", !bad.ok, "ok == false, as this section expects");
    verifier.check("it blames input 0 (x), not y", bad.input == 0, fmt::format("input {}", bad.input));
    verifier.check("the report shows the op", !suspect_line.empty(), "a tape line names bad_cube");
    verifier.check_close("numeric = true derivative", {"gradcheck numeric", bad.numeric},
                         {"3x²·sin y", 3 * cx[e] * cx[e] * std::sin(cy[e])}, 1e-6, 1e-9);
    verifier.check_close("analytic = the wrong rule", {"gradcheck analytic", bad.analytic},
                         {"3x·sin y", 3 * cx[e] * std::sin(cy[e])}, 1e-14, 1e-15);

    fmt::print("\nWith the rule fixed (cube: 3x²), the same check passes:\n\n");
    auto with_cube = [](const std::vector<Var>& in) { return sum(cube(in[0]) * sin(in[1])); };
    const GradcheckResult fixed = gradcheck(with_cube, {cx, cy});
    print_indented(fixed.report);
    fmt::print("\n");
    verifier.check("gradcheck passes after the fix", fixed.ok);

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli(
        "01_finite_differences",
        "Forward vs central differences, the best step size, and gradcheck catching a wrong backward rule");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
