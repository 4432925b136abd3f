// 08_your_own_bijector: write a new bijector (sinh-arcsinh), check it by hand and with the conformance kit, watch the kit catch a log-det sign bug, then train it inside a RealNVP
//
// How a user extends tapeflow. The sinh-arcsinh map of Jones & Pewsey (2009) is written here, in
// this file, as a class derived from flows::Bijector: three small custom ops made with `record`
// (asinh, sinh and a stable log cosh), two learnable parameter vectors, forward and inverse with
// their log-dets. We check its derivative by hand against finite differences, run the conformance
// kit on it, break its log-det sign on purpose in one direction and then the other to see which
// checks of the kit fail, and finally append it to a RealNVP trained on heavy-tailed data, where it
// lowers the test NLL of the same RealNVP without it.
//
//   ./tapeflow tutorial 08 [--steps N] [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "autograd/var.hpp"
#include "flows/bijector.hpp"
#include "flows/conformance.hpp"
#include "flows/flow.hpp"
#include "flows/realnvp.hpp"
#include "flows/trainer.hpp"
#include "tensor/elementwise.hpp"
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

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double ln2 = std::numbers::ln2;

using tutorial::print_indented;

// ---- Three custom ops, each one `record` (autograd/op.hpp): a value, its inputs, and the derivative
// on paper. `map` (also from op.hpp) applies a scalar function to every element.

// asinh(a), d/da = 1/√(1 + a²), written 1/hypot(1, a) so that it does not overflow for huge a.
Var asinh(const Var& a) {
    return record("asinh", map(a.value(), [](double v) { return std::asinh(v); }), {a}, [](Backward& ctx) {
        const Tensor slope = map(ctx.input(0), [](double v) { return 1 / std::hypot(1.0, v); });
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), slope));
    });
}

// sinh(a), d/da = cosh(a).
Var sinh(const Var& a) {
    return record("sinh", map(a.value(), [](double v) { return std::sinh(v); }), {a}, [](Backward& ctx) {
        const Tensor slope = map(ctx.input(0), [](double v) { return std::cosh(v); });
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), slope));
    });
}

// log cosh(a) = |a| + log1p(e^{−2|a|}) − log 2: cosh(a) = e^{|a|}(1 + e^{−2|a|})/2, and this form never
// overflows (log(cosh(800)) is inf in doubles, log cosh 800 = 800 − log 2). d/da = tanh(a).
double log_cosh(double a) { return std::abs(a) + std::log1p(std::exp(-2 * std::abs(a))) - ln2; }
Var log_cosh(const Var& a) {
    return record("log_cosh", map(a.value(), [](double v) { return log_cosh(v); }), {a}, [](Backward& ctx) {
        const Tensor slope = map(ctx.input(0), [](double v) { return std::tanh(v); });
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), slope));
    });
}

// A custom op whose rule captures state: the scaled softsign x/(c + |x|), c > 0, a squashing map onto
// (−1, 1) whose width c is fixed when the op is recorded. d/dx = c/(c + |x|)². The rule captures c by
// value: it runs during backward, after this function has returned.
Var scaled_softsign(const Var& x, double c) {
    if (!(c > 0)) throw std::invalid_argument(fmt::format("scaled_softsign: the width c must be > 0, got {}", c));
    return record("scaled_softsign", map(x.value(), [c](double v) { return v / (c + std::abs(v)); }), {x},
                  [c](Backward& ctx) {
                      const Tensor slope = map(ctx.input(0), [c](double v) { return c / ((c + std::abs(v)) * (c + std::abs(v))); });
                      ctx.accumulate(0, tapeflow::mul(ctx.grad(), slope));
                  });
}

using stable::inverse_softplus;  // ln(eʸ − 1), y > 0

// ---- The bijector ------------------------------------------------------------------------------

// The sinh-arcsinh map (Jones & Pewsey 2009), one per coordinate, latent z → data x:
//
//     x = sinh(δ·asinh(z) − ε),      δ = softplus(δ′) > 0,
//     log|dx/dz| = log δ + log cosh(δ·asinh(z) − ε) − ½ log(1 + z²)
//                = log δ + log cosh(u) − log cosh(a),   a = asinh(z), u = δ·a − ε,
//
// since cosh(asinh z) = √(1 + z²). The inverse runs the same two angles backwards,
// u = asinh(x), a = (u + ε)/δ, z = sinh(a), with minus the same log-det. ε skews (ε > 0 moves mass
// towards negative x), δ sets the tails (δ > 1 heavier than z's, δ < 1 lighter); ε = 0, δ = 1 is the
// identity. Learnable per coordinate: "epsilon" [D] and "raw_delta" [D] (δ′, unconstrained).
class SinhArcsinh : public flows::Bijector {
public:
    // The identity: ε = 0, δ = 1. Throws std::invalid_argument if D = 0.
    explicit SinhArcsinh(std::size_t dim) : SinhArcsinh(Tensor::zeros(Shape{dim}), Tensor::ones(Shape{dim})) {}
    // Given ε [D] and δ [D] (δ > 0); throws std::invalid_argument unless both are non-empty vectors
    // of one shape with finite ε and finite δ > 0.
    SinhArcsinh(const Tensor& epsilon, const Tensor& delta)
        : dim_(require_parameters(epsilon, delta)),
          epsilon_(register_parameter("epsilon", epsilon.clone())),
          raw_delta_(register_parameter("raw_delta", map(delta, inverse_softplus))) {}

    flows::Transformed forward(const Var& z) override {
        flows::require_batch(z, dim_, "SinhArcsinh::forward");
        const Var delta = softplus(raw_delta_.var());
        const Var a = asinh(z);
        const Var u = a * delta - epsilon_.var();
        return {sinh(u), sum(log_cosh(u) - log_cosh(a) + log(delta), 1)};
    }

    flows::Transformed inverse(const Var& x) override {
        flows::require_batch(x, dim_, "SinhArcsinh::inverse");
        const Var delta = softplus(raw_delta_.var());
        const Var u = asinh(x);
        const Var a = (u + epsilon_.var()) / delta;
        return {sinh(a), -sum(log_cosh(u) - log_cosh(a) + log(delta), 1)};
    }

    std::size_t dim() const override { return dim_; }
    std::string name() const override { return fmt::format("SinhArcsinh(D = {})", dim_); }

    Tensor epsilon() const { return epsilon_.value; }
    Tensor delta() const { return map(raw_delta_.value, stable::softplus); }

private:
    static std::size_t require_parameters(const Tensor& epsilon, const Tensor& delta) {
        if (!epsilon.defined() || !delta.defined() || epsilon.rank() != 1 || epsilon.numel() == 0 ||
            !(epsilon.shape() == delta.shape()))
            throw std::invalid_argument(fmt::format(
                "SinhArcsinh: epsilon and delta must be non-empty vectors [D] of one shape, got {} and {}",
                epsilon.shape(), delta.shape()));
        for (std::size_t j = 0; j < epsilon.numel(); ++j)
            if (!std::isfinite(epsilon[j]) || !std::isfinite(delta[j]) || !(delta[j] > 0))
                throw std::invalid_argument(fmt::format(
                    "SinhArcsinh: need finite epsilon and finite delta > 0, got epsilon[{0}] = {1}, delta[{0}] = {2}",
                    j, epsilon[j], delta[j]));
        return epsilon.numel();
    }

    std::size_t dim_;
    Parameter& epsilon_;
    Parameter& raw_delta_;
};

// The same map with the most common flow bug: the log-det's sign flipped, in one direction only.
// Values and round trips are untouched, so nothing but the log-det can give it away.
class SinhArcsinhWithSignBug : public SinhArcsinh {
public:
    enum class Direction { forward, inverse };
    SinhArcsinhWithSignBug(const Tensor& epsilon, const Tensor& delta, Direction broken)
        : SinhArcsinh(epsilon, delta), broken_(broken) {}

    flows::Transformed forward(const Var& z) override {
        flows::Transformed t = SinhArcsinh::forward(z);
        if (broken_ == Direction::forward) t.log_abs_det_jacobian = -t.log_abs_det_jacobian;
        return t;
    }
    flows::Transformed inverse(const Var& x) override {
        flows::Transformed t = SinhArcsinh::inverse(x);
        if (broken_ == Direction::inverse) t.log_abs_det_jacobian = -t.log_abs_det_jacobian;
        return t;
    }
    std::string name() const override {
        return fmt::format("SinhArcsinh with the {} log-det negated", broken_ == Direction::forward ? "forward" : "inverse");
    }

private:
    Direction broken_;
};

// ---- Plain-double versions, for the formulas and the figures -----------------------------------

struct SasParameters {
    double epsilon, delta;
};
double sas_forward(double z, SasParameters p) { return std::sinh(p.delta * std::asinh(z) - p.epsilon); }
double sas_inverse(double x, SasParameters p) { return std::sinh((std::asinh(x) + p.epsilon) / p.delta); }
// dx/dz = δ·cosh(δ·asinh(z) − ε)/√(1 + z²), straight from the chain rule (no logs).
double sas_derivative(double z, SasParameters p) {
    return p.delta * std::cosh(p.delta * std::asinh(z) - p.epsilon) / std::sqrt(1 + z * z);
}
double std_normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi); }
// p_x(x) = φ(z)/(dx/dz) at z = f⁻¹(x).
double sas_density(double x, SasParameters p) {
    const double z = sas_inverse(x, p);
    return std_normal_pdf(z) / sas_derivative(z, p);
}

// ---- The data set of section 6 -----------------------------------------------------------------

// A heavy-tailed bent cloud: x₁ ~ t₂, x₂ = 1.5·tanh(x₁) + 0.5·t₂′, with t₂, t₂′ independent Student t
// variables with ν = 2 degrees of freedom (density ∝ |t|⁻³ in the tails: infinite variance). Its
// density is known, so the test NLL can be read against the data's own: p(x) = t₂(x₁)·t₂((x₂ − m)/s)/s
// with m = 1.5·tanh(x₁), s = 0.5.
constexpr double nu = 2;
constexpr double bend = 1.5, spread = 0.5;

double student_t(Rng& rng) {
    double chi2 = 0;
    for (int k = 0; k < static_cast<int>(nu); ++k) {
        const double g = rng.normal();
        chi2 += g * g;
    }
    return rng.normal() / std::sqrt(chi2 / nu);
}

double log_student_t(double t) {
    return std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5 * std::log(nu * std::numbers::pi) -
           (nu + 1) / 2 * std::log1p(t * t / nu);
}

Tensor sample_bent_t(std::size_t n, Rng& rng) {
    Tensor x(Shape{n, 2});
    for (std::size_t k = 0; k < n; ++k) {
        const double x1 = student_t(rng);
        x.at({k, 0}) = x1;
        x.at({k, 1}) = bend * std::tanh(x1) + spread * student_t(rng);
    }
    return x;
}

double log_density_bent_t(double x1, double x2) {
    return log_student_t(x1) + log_student_t((x2 - bend * std::tanh(x1)) / spread) - std::log(spread);
}

// ---- Training ----------------------------------------------------------------------------------

struct Fit {
    std::string label;
    std::unique_ptr<flows::Flow> flow;
    std::vector<double> steps, losses;  // logged training loss (mean NLL of the batches)
    double seconds = 0;
    double test_nll = 0;
    std::vector<double> test_log_prob;  // log p(x) of every test point
};

Fit train_model(std::string label, std::unique_ptr<flows::Flow> flow, std::size_t steps, std::uint64_t seed, const Tensor& test) {
    Fit fit{.label = std::move(label), .flow = std::move(flow)};
    const std::size_t log_every = std::max<std::size_t>(1, steps / 100);
    const flows::TrainResult r = flows::train_forward_kl(
        *fit.flow, sample_bent_t,
        {.steps = steps,
         .batch = 256,
         .learning_rate = 5e-3,
         .seed = seed,
         .log_every = log_every,
         .progress = true,
         .progress_options = {.label = fmt::format("    {}", fit.label), .plain_lines = 4},
         // One far outlier in a batch of heavy-tailed data can produce a huge gradient.
         .clip_norm = 10.0});
    fit.steps = r.logged_steps;
    fit.losses = r.losses;
    fit.seconds = r.seconds;
    fit.test_nll = flows::evaluate_nll(*fit.flow, test);
    {
        NoGrad no_grad;
        fit.test_log_prob = fit.flow->log_prob(Var(test)).value().to_vector();
    }
    return fit;
}

// ==============================================================================================

int run(const tutorial::Options& opt) {
    Verifier verifier;
    const std::filesystem::path out_dir(opt.out_dir);
    const std::int64_t steps = opt.integer("--steps");
    Rng rng(opt.seed);

    // The parameters used in sections 1 to 5: a skew and a tail weight per coordinate.
    const Tensor epsilon{0.4, -0.6}, delta{1.5, 0.7};

    // ------------------------------------------------------------------------------------------
    verifier.section("The sinh-arcsinh map");
    fmt::print(
        "Jones & Pewsey's sinh-arcsinh map bends a Gaussian into a skewed, heavy- or light-tailed one\n"
        "with two numbers per coordinate. Latent z to data x:\n\n"
        "    x = sinh(δ·asinh(z) − ε),   δ = softplus(δ′) > 0        (monotone: dx/dz > 0 everywhere)\n"
        "    z = sinh((asinh(x) + ε)/δ)                              (the inverse, closed form)\n\n"
        "With a = asinh(z) and u = δ·a − ε the chain rule gives dx/dz = cosh(u)·δ·(1 + z²)^(−1/2), and\n"
        "cosh(asinh z) = √(1 + z²), so\n\n"
        "    log|dx/dz| = log δ + log cosh(u) − log cosh(a)\n\n"
        "in both directions (the inverse computes u = asinh(x), a = (u + ε)/δ and negates it).\n"
        "log cosh must be written stably: cosh(u) overflows for |u| > 710, so we use\n"
        "log cosh(u) = |u| + log1p(e^(−2|u|)) − log 2.\n\n");
    {
        const double big = 800;
        const double naive = std::log(std::cosh(big)), stable_value = log_cosh(big);
        fmt::print("    log(cosh({0})) = {1}      log_cosh({0}) = {2:.15g}   (= {0} − log 2)\n\n", big, naive,
                   stable_value);
        verifier.check("log(cosh(800)) overflows", std::isinf(naive));
        verifier.check_close("log_cosh(800)", {"log_cosh", stable_value}, {"800 − log 2", big - ln2}, 1e-15, 0);
        double worst = 0;
        for (double u = -20; u <= 20; u += 0.125) worst = std::max(worst, std::abs(log_cosh(u) - std::log(std::cosh(u))));
        verifier.check_error("max |log_cosh − log(cosh)| on [−20, 20]", worst, 1e-14);
    }
    // A few shapes, as maps and as the densities they give a standard normal z.
    const std::vector<std::pair<SasParameters, std::string>> shapes = {
        {{0.0, 1.0}, "ε = 0, δ = 1 (identity)"},
        {{0.0, 1.6}, "ε = 0, δ = 1.6 (heavier tails)"},
        {{0.0, 0.6}, "ε = 0, δ = 0.6 (lighter tails)"},
        {{0.8, 1.0}, "ε = 0.8, δ = 1 (skewed left)"},
        {{-0.8, 1.3}, "ε = −0.8, δ = 1.3 (skewed right, heavier)"},
    };
    {
        // Each density p_x(x) = φ(z)/(dx/dz) must integrate to 1 (trapezoid rule on a wide x range),
        // and the closed-form inverse must undo the map.
        const double reach = 200;
        const std::size_t nodes = opt.quick ? 200'001 : 2'000'001;
        const double h = 2 * reach / static_cast<double>(nodes - 1);
        std::vector<std::vector<std::string>> rows;
        double worst_mass = 0, worst_round_trip = 0;
        for (const auto& [p, label] : shapes) {
            double mass = 0;
            for (std::size_t i = 0; i < nodes; ++i) {
                const double x = -reach + static_cast<double>(i) * h;
                mass += (i == 0 || i + 1 == nodes ? 0.5 : 1.0) * sas_density(x, p) * h;
            }
            for (double z = -8; z <= 8; z += 0.25)
                worst_round_trip = std::max(worst_round_trip, std::abs(sas_inverse(sas_forward(z, p), p) - z) / std::max(1.0, std::abs(z)));
            worst_mass = std::max(worst_mass, std::abs(mass - 1));
            rows.push_back({label, fmt::format("{:.4f}", sas_forward(-2, p)), fmt::format("{:.4f}", sas_forward(2, p)),
                            fmt::format("{:.12f}", mass)});
        }
        print_indented(plot::ascii_table({"shape", "f(−2)", "f(2)", "∫ p_x dx on [−200, 200]"}, rows));
        fmt::print("\n");
        verifier.check_error("every shape's density: worst |∫ − 1|", worst_mass, 1e-7);
        verifier.check_error("z → x → z in closed form on [−8, 8], worst relative", worst_round_trip, 1e-14);

        plot::Figure fig(1, 2, 430, 360);
        plot::Axes& maps = fig.axes(0, 0);
        plot::Axes& densities = fig.axes(0, 1);
        for (const auto& [p, label] : shapes) {
            std::vector<double> zs, xs, grid, ps;
            for (int i = 0; i <= 400; ++i) {
                const double z = -4 + 8.0 * i / 400;
                zs.push_back(z);
                xs.push_back(sas_forward(z, p));
                const double x = -6 + 12.0 * i / 400;
                grid.push_back(x);
                ps.push_back(sas_density(x, p));
            }
            const bool identity = p.epsilon == 0 && p.delta == 1;
            const plot::Style style{.colour = identity ? "#555555" : "", .dashed = identity, .label = label};
            maps.line(zs, xs, style);
            densities.line(grid, ps, style);
        }
        maps.set_title("x = sinh(δ·asinh(z) − ε)").set_xlabel("z").set_ylabel("x").set_ylim(-8, 8);
        densities.set_title("p_x for z ~ N(0, 1)").set_xlabel("x").set_ylabel("p_x(x)").set_ylim(0, 0.95).legend();
        const std::string path = (out_dir / "sinh_arcsinh.svg").string();
        fig.save(path);
        fmt::print("Figure: {}\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The class: a Bijector built from Var ops and three custom ops");
    SinhArcsinh sas(epsilon, delta);
    fmt::print(
        "SinhArcsinh derives from flows::Bijector and implements forward (z → x), inverse (x → z) and\n"
        "dim(); each returns {{value [N, D], log_abs_det_jacobian [N]}}. The library has no asinh, sinh or\n"
        "log cosh on Vars, so this file defines them with record(name, value, {{inputs}}, rule): the\n"
        "backward rule is the derivative on paper (1/√(1 + a²), cosh a, tanh a). The parameters are\n"
        "registered in the constructor, which is all it takes for the optimizer, the gradcheck and the\n"
        "checkpoints to see them. Here ε = ({}, {}) and δ = ({}, {}):\n\n",
        epsilon[0], epsilon[1], delta[0], delta[1]);
    print_indented(sas.summary());
    fmt::print("\n");
    {
        const auto named = sas.named_parameters();
        verifier.check("two registered parameters, epsilon [2] and raw_delta [2]",
                       named.size() == 2 && named[0].first == "epsilon" && named[1].first == "raw_delta" &&
                           sas.parameter_count() == 4);
        verifier.check_error("max |softplus(raw_delta) − the δ we gave|", max_abs_diff(sas.delta(), delta), 1e-15);
        // Each custom op against finite differences, away from nothing in particular: all three are smooth.
        const Tensor a = Tensor{{-30.0, -2.5, -0.4, 0.0}, {0.3, 1.7, 4.0, 25.0}};
        const GradcheckResult g_asinh = gradcheck([](const std::vector<Var>& v) { return asinh(v[0]); }, {a});
        const GradcheckResult g_sinh = gradcheck([](const std::vector<Var>& v) { return sinh(v[0]); }, {a * 0.2});
        const GradcheckResult g_log_cosh = gradcheck([](const std::vector<Var>& v) { return log_cosh(v[0]); }, {a});
        verifier.check("gradcheck: asinh", g_asinh.ok, fmt::format("worst |analytic − numeric| {:.1e}", g_asinh.error));
        verifier.check("gradcheck: sinh", g_sinh.ok, fmt::format("worst {:.1e}", g_sinh.error));
        verifier.check("gradcheck: log_cosh", g_log_cosh.ok, fmt::format("worst {:.1e}", g_log_cosh.error));
        bool throws = false;
        try {
            SinhArcsinh bad(Tensor{0.0, 0.0}, Tensor{1.0, -1.0});
        } catch (const std::invalid_argument& e) {
            throws = std::string(e.what()).find("delta > 0") != std::string::npos;
        }
        verifier.check("a δ ≤ 0 is refused with a clear message", throws);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Checking the derivative by hand");
    {
        // In one dimension log|det J| is just log(dx/dz): compare it with the formula and with a
        // central difference of `forward` itself.
        const SasParameters p{0.4, 1.5};
        SinhArcsinh one(Tensor{p.epsilon}, Tensor{p.delta});
        const std::vector<double> zs = {-4.0, -1.5, -0.3, 0.0, 0.7, 2.0, 5.0};
        const Tensor z(Shape{zs.size(), 1}, zs);
        NoGrad no_grad;
        const flows::Transformed fwd = one.forward(Var(z));
        const flows::Transformed back = one.inverse(fwd.value);
        const double h = 1e-6;
        auto f = [&](double v) { return one.forward(Var(Tensor(Shape{1, 1}, {v}))).value.item(); };
        std::vector<std::vector<std::string>> rows;
        double worst_formula = 0, worst_fd = 0, worst_inverse = 0, worst_round_trip = 0;
        for (std::size_t k = 0; k < zs.size(); ++k) {
            const double log_det = fwd.log_abs_det_jacobian.value()[k];
            const double formula = std::log(sas_derivative(zs[k], p));
            const double central = std::log((f(zs[k] + h) - f(zs[k] - h)) / (2 * h));
            worst_formula = std::max(worst_formula, std::abs(log_det - formula));
            worst_fd = std::max(worst_fd, std::abs(log_det - central));
            worst_inverse = std::max(worst_inverse, std::abs(back.log_abs_det_jacobian.value()[k] + log_det));
            worst_round_trip = std::max(worst_round_trip, std::abs(back.value.value()[k] - zs[k]));
            rows.push_back({fmt::format("{:.1f}", zs[k]), fmt::format("{:.6f}", fwd.value.value()[k]),
                            fmt::format("{:.12f}", log_det), fmt::format("{:.12f}", formula),
                            fmt::format("{:.12f}", central), fmt::format("{:.1e}", std::abs(log_det - central))});
        }
        fmt::print(
            "One coordinate, ε = {}, δ = {}. log|dx/dz| from forward(), from the formula\n"
            "log(δ·cosh(u)/√(1 + z²)) evaluated without any log cosh, and from a central difference\n"
            "(f(z + h) − f(z − h))/2h with h = 1e-6:\n\n",
            p.epsilon, p.delta);
        print_indented(plot::ascii_table({"z", "x = f(z)", "forward log-det", "formula", "finite difference", "|fd − forward|"},
                                         rows));
        fmt::print("\n");
        verifier.check_error("max |forward log-det − formula|", worst_formula, 1e-14);
        verifier.check_error("max |forward log-det − central diff.|", worst_fd, 1e-8);
        verifier.check_error("max |inverse log-det + forward's|", worst_inverse, 1e-14);
        verifier.check_error("max |inverse(forward(z)) − z|", worst_round_trip, 1e-14);
    }
    {
        // The whole bijector, values and log-dets, against finite differences in z and the parameters.
        const Tensor z = randn(Shape{3, 2}, rng);
        const GradcheckOptions with_parameters{.parameters = sas.parameters()};
        const GradcheckResult g_forward = gradcheck(
            [&](const std::vector<Var>& v) {
                const flows::Transformed t = sas.forward(v[0]);
                return concat({flatten(t.value), t.log_abs_det_jacobian}, 0);
            },
            {z}, with_parameters);
        Tensor x;
        {
            NoGrad no_grad;
            x = sas.forward(Var(z)).value.value();
        }
        const GradcheckResult g_inverse = gradcheck(
            [&](const std::vector<Var>& v) {
                const flows::Transformed t = sas.inverse(v[0]);
                return concat({flatten(t.value), t.log_abs_det_jacobian}, 0);
            },
            {x}, with_parameters);
        fmt::print(
            "gradcheck of (value, log-det) for 3 random points in D = 2, with respect to the points and to\n"
            "ε and δ′: worst |analytic − numeric| {:.1e} (forward), {:.1e} (inverse).\n",
            g_forward.error, g_inverse.error);
        verifier.check("gradcheck: forward, in z and the parameters", g_forward.ok);
        verifier.check("gradcheck: inverse, in x and the parameters", g_inverse.ok);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The conformance kit");
    const Tensor points = randn(Shape{64, 2}, rng) * 1.5;
    // The density check integrates over a box; this bijector's heavy left tail needs a wider one (below).
    const flows::ConformanceOptions wide{.box_half_width = 50, .grid_points_2d = 1001};
    {
        fmt::print(
            "flows::check_bijector(b, points) runs every check a bijector owes its users (round trips,\n"
            "log-det against the autodiff and finite-difference Jacobians, inverse log-det, parameter\n"
            "gradients, gradchecks, batch independence, and ∫ p = 1 for N(0, I) pushed through b) and\n"
            "returns a report. On 64 points z ~ N(0, 1.5²·I), with the default options:\n\n");
        const flows::ConformanceReport report = flows::check_bijector(sas, points);
        print_indented(report.to_string());
        const flows::ConformanceCheck* density = report.find("density");
        const flows::ConformanceOptions defaults;
        const double w = defaults.box_half_width;
        // The coordinates of x are independent (z ~ N(0, I), f elementwise), so the mass of the box is a
        // product: P(|x_j| ≤ w) = Φ(f_j⁻¹(w)) − Φ(f_j⁻¹(−w)).
        auto normal_cdf = [](double v) { return 0.5 * std::erfc(-v / std::numbers::sqrt2); };
        double inside = 1;
        for (std::size_t j = 0; j < 2; ++j) {
            const SasParameters p{epsilon[j], delta[j]};
            inside *= normal_cdf(sas_inverse(w, p)) - normal_cdf(sas_inverse(-w, p));
        }
        const SasParameters first{epsilon[0], delta[0]};
        fmt::print(
            "\nEverything passes but the density, and the density is not wrong: the check integrates over\n"
            "the box [−{0}, {0}]², and with ε₁ = {1}, δ₁ = {2} the first coordinate is below −{0} whenever\n"
            "z₁ < f⁻¹(−{0}) = {3:.3f}. The box misses P(x ∉ box) = 1 − Π_j (Φ(f_j⁻¹({0})) − Φ(f_j⁻¹(−{0}))) =\n"
            "{4:.6f} of the mass; the kit measured |∫ − 1| = {5:.6f}. A heavy-tailed bijector needs a wider box\n"
            "(and as many more grid nodes, to keep the spacing): ConformanceOptions{{.box_half_width = {6},\n"
            ".grid_points_2d = {7}}}:\n\n",
            w, first.epsilon, first.delta, sas_inverse(-w, first), 1 - inside, density ? density->worst : 0.0,
            wide.box_half_width, wide.grid_points_2d);
        std::size_t others_failed = 0;
        for (const flows::ConformanceCheck& c : report.checks) others_failed += c.name != "density" && !c.passed;
        verifier.check("default options: every check but the density passes", others_failed == 0 && density != nullptr);
        verifier.check_close("… whose |∫ − 1| is the mass outside", {"kit's |∫ − 1|", density ? density->worst : 0.0},
                             {"1 − Π_j P(|x_j| ≤ w)", 1 - inside}, 1e-3, 0);
        const flows::ConformanceReport wide_report = flows::check_bijector(sas, points, wide);
        print_indented(wide_report.to_string());
        fmt::print("\n");
        verifier.check("with the wider box the kit passes SinhArcsinh", wide_report.ok);
        verifier.check("all ten checks ran", wide_report.checks.size() == 10,
                       fmt::format("{} checks", wide_report.checks.size()));
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Breaking it on purpose");
    {
        fmt::print(
            "SinhArcsinhWithSignBug returns the same values but negates the log-det in one direction.\n"
            "Round trips cannot see this. Which checks can:\n\n");
        using Direction = SinhArcsinhWithSignBug::Direction;
        SinhArcsinhWithSignBug forward_bug(epsilon, delta, Direction::forward);
        SinhArcsinhWithSignBug inverse_bug(epsilon, delta, Direction::inverse);
        const flows::ConformanceReport good = flows::check_bijector(sas, points, wide);
        const flows::ConformanceReport bad_forward = flows::check_bijector(forward_bug, points, wide);
        const flows::ConformanceReport bad_inverse = flows::check_bijector(inverse_bug, points, wide);
        auto cell = [](const flows::ConformanceReport& r, const std::string& name) {
            const flows::ConformanceCheck* c = r.find(name);
            return c == nullptr ? std::string("-") : fmt::format("{} {:.2g}", c->passed ? "pass" : "FAIL", c->worst);
        };
        std::vector<std::vector<std::string>> rows;
        for (const flows::ConformanceCheck& c : good.checks)
            rows.push_back({c.name, cell(good, c.name), cell(bad_forward, c.name), cell(bad_inverse, c.name)});
        print_indented(plot::ascii_table({"check", "correct", "forward log-det negated", "inverse log-det negated"}, rows));
        fmt::print("\nThe report of the second one in full:\n\n");
        print_indented(bad_inverse.to_string());
        fmt::print("\n");
        auto failed = [](const flows::ConformanceReport& r, const char* name) {
            const flows::ConformanceCheck* c = r.find(name);
            return c != nullptr && !c->passed;
        };
        auto passed = [](const flows::ConformanceReport& r, const char* name) {
            const flows::ConformanceCheck* c = r.find(name);
            return c != nullptr && c->passed;
        };
        verifier.check("the kit rejects the forward sign bug", !bad_forward.ok);
        verifier.check("… through log_det_autodiff, log_det_finite_diff and inverse_log_det",
                       failed(bad_forward, "log_det_autodiff") && failed(bad_forward, "log_det_finite_diff") &&
                           failed(bad_forward, "inverse_log_det"));
        verifier.check("the kit rejects the inverse sign bug", !bad_inverse.ok);
        verifier.check("… through inverse_log_det and density (∫ p ≠ 1)",
                       failed(bad_inverse, "inverse_log_det") && failed(bad_inverse, "density"));
        verifier.check("round trips pass for both bugs: they cannot see a log-det",
                       passed(bad_forward, "round_trip_z") && passed(bad_forward, "round_trip_x") &&
                           passed(bad_inverse, "round_trip_z") && passed(bad_inverse, "round_trip_x"));
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Inside a RealNVP, on heavy-tailed data");
    const std::size_t n_test = opt.quick ? 5'000 : 50'000;
    Rng test_rng(opt.seed + 100);
    const Tensor test = sample_bent_t(n_test, test_rng);
    std::vector<double> data_log_prob(n_test);
    double data_nll = 0;
    for (std::size_t k = 0; k < n_test; ++k) {
        data_log_prob[k] = log_density_bent_t(test.at({k, 0}), test.at({k, 1}));
        data_nll -= data_log_prob[k];
    }
    data_nll /= static_cast<double>(n_test);
    // The tail: the 1% of test points that are least likely under the data's own density.
    std::vector<std::size_t> tail(n_test);
    for (std::size_t k = 0; k < n_test; ++k) tail[k] = k;
    std::sort(tail.begin(), tail.end(), [&](std::size_t a, std::size_t b) { return data_log_prob[a] < data_log_prob[b]; });
    tail.resize(n_test / 100);
    auto tail_nll = [&](const std::vector<double>& log_prob) {
        double total = 0;
        for (std::size_t k : tail) total -= log_prob[k];
        return total / static_cast<double>(tail.size());
    };
    const flows::RealNVPOptions realnvp{.dim = 2, .couplings = 6, .hidden = {32, 32}, .seed = opt.seed};
    fmt::print(
        "The data: x₁ ~ t₂, x₂ = {}·tanh(x₁) + {}·t₂′ (Student t with ν = 2: density ∝ |t|⁻³ in the\n"
        "tails, infinite variance). An affine coupling moves and scales a Gaussian by bounded amounts,\n"
        "so a RealNVP's tails stay Gaussian, only wider; appending SinhArcsinh as the last layer,\n"
        "x = SAS(RealNVP(z)), lets the flow stretch them. Two flows with the same couplings ({}\n"
        "couplings, conditioner 2 → {} → {} → 4, same initial weights), trained the same way ({} steps,\n"
        "batch 256, Adam 5e-3, gradient norm clipped at 10, the same batches):\n\n",
        bend, spread, realnvp.couplings, realnvp.hidden[0], realnvp.hidden[1], steps);
    std::vector<Fit> fits;
    fits.push_back(train_model("RealNVP", flows::make_realnvp(realnvp), static_cast<std::size_t>(steps), opt.seed + 1, test));
    {
        auto flow = flows::make_realnvp(realnvp);
        flow->add(std::make_unique<SinhArcsinh>(2));
        fits.push_back(train_model("RealNVP + SinhArcsinh", std::move(flow), static_cast<std::size_t>(steps), opt.seed + 1, test));
    }
    auto& learned = dynamic_cast<SinhArcsinh&>(fits[1].flow->layer(fits[1].flow->size() - 1));
    fmt::print("\n");
    std::vector<std::vector<std::string>> rows;
    for (const Fit& f : fits)
        rows.push_back({f.label, fmt::format("{}", f.flow->parameter_count()), fmt::format("{:.4f}", f.losses.front()),
                        fmt::format("{:.4f}", f.losses.back()), fmt::format("{:.4f}", f.test_nll),
                        fmt::format("{:.3f}", tail_nll(f.test_log_prob)), fmt::format("{:.1f} s", f.seconds)});
    rows.push_back({"the data's own density", "", "", "", fmt::format("{:.4f}", data_nll),
                    fmt::format("{:.3f}", tail_nll(data_log_prob)), ""});
    print_indented(plot::ascii_table({"model", "parameters", "first loss", "last loss",
                                      fmt::format("test NLL ({} points)", n_test), "on the rarest 1%", "training"},
                                     rows));
    fmt::print(
        "\nThe learned SinhArcsinh: ε = ({:.3f}, {:.3f}), δ = ({:.3f}, {:.3f}) (δ > 1: heavier tails).\n"
        "Test NLL can't go below the data's own −log p on the same points (in expectation).\n\n",
        learned.epsilon()[0], learned.epsilon()[1], learned.delta()[0], learned.delta()[1]);
    for (const Fit& f : fits) {
        verifier.check(fmt::format("{}: test NLL is finite", f.label), std::isfinite(f.test_nll));
        verifier.check(fmt::format("{}: the training loss decreased", f.label), f.losses.back() < f.losses.front(),
                       fmt::format("{:.4f} → {:.4f}", f.losses.front(), f.losses.back()));
    }
    // The mean moves little (the bulk is easy for both) and its sign can change with the seed; the
    // gain is in the tail.
    verifier.check("SinhArcsinh lowers the NLL of the rarest 1%", tail_nll(fits[1].test_log_prob) < tail_nll(fits[0].test_log_prob),
                   fmt::format("{:.3f} vs {:.3f}", tail_nll(fits[1].test_log_prob), tail_nll(fits[0].test_log_prob)));
    // A sanity bound: cross-entropy ≥ entropy in expectation (Gibbs), so on the same test points
    // each model's NLL should sit above the data's own −log p unless the test set is unlucky.
    for (const Fit& f : fits)
        verifier.check_at_most(fmt::format("{}: sanity bound", f.label), {"data's own −log p", data_nll},
                               {"test NLL", f.test_nll});
    {
        // The densities on a log colour scale (the tails are the point), and samples of each.
        const double box = 8;
        const std::size_t n_grid = opt.quick ? 80 : 160;
        const double cell = 2 * box / static_cast<double>(n_grid);
        std::vector<double> truth(n_grid * n_grid);
        for (std::size_t r = 0; r < n_grid; ++r)
            for (std::size_t c = 0; c < n_grid; ++c)
                truth[r * n_grid + c] = std::exp(log_density_bent_t(-box + (static_cast<double>(c) + 0.5) * cell,
                                                                    -box + (static_cast<double>(r) + 0.5) * cell));
        std::vector<std::vector<double>> grids = {truth};
        for (Fit& f : fits) grids.push_back(flows::density_grid(*f.flow, box, n_grid).to_vector());
        const double top = *std::max_element(truth.begin(), truth.end());
        const int side = static_cast<int>(n_grid);

        fmt::print("log density on [−{0}, {0}]²: the data's, RealNVP's, RealNVP + SinhArcsinh's (floor 10⁻⁶ of the peak):\n\n", box);
        std::vector<std::istringstream> pictures;
        for (const auto& g : grids) {
            std::vector<double> l;
            for (double v : g) l.push_back(std::log(std::max(v, top * 1e-6)));
            pictures.emplace_back(plot::ascii_heatmap(l, side, side, 26, 13));
        }
        for (std::string a, b, c; std::getline(pictures[0], a) && std::getline(pictures[1], b) && std::getline(pictures[2], c);)
            fmt::print("    {}  {}  {}\n", a, b, c);

        plot::Figure fig(2, 3, 360, 330);
        const char* titles[3] = {"data: t₂ bent by tanh", "RealNVP", "RealNVP + SinhArcsinh"};
        for (int k = 0; k < 3; ++k)
            fig.axes(0, k)
                .heatmap(grids[k], side, side, -box, box, -box, box,
                         {.colormap = plot::Colormap::magma,
                          .colorbar_label = "density (log scale)",
                          .log_scale = true,
                          .value_min = top * 1e-5,
                          .value_max = top})
                .set_title(k == 0 ? titles[k]
                                  : fmt::format("{}: test NLL {:.3f}", titles[k], fits[static_cast<std::size_t>(k - 1)].test_nll))
                .set_xlabel("x₁")
                .set_ylabel("x₂")
                .equal_aspect();
        const std::size_t n_show = 3000;
        const double reach = 20;
        Rng picture_rng(opt.seed + 200);
        std::vector<Tensor> samples = {sample_bent_t(n_show, picture_rng)};
        for (Fit& f : fits) samples.push_back(f.flow->sample(n_show, picture_rng));
        for (int k = 0; k < 3; ++k) {
            std::vector<double> s1, s2;
            std::size_t outside = 0;
            for (std::size_t i = 0; i < n_show; ++i) {
                const double a = samples[static_cast<std::size_t>(k)].at({i, 0}), b = samples[static_cast<std::size_t>(k)].at({i, 1});
                if (std::abs(a) > reach || std::abs(b) > reach) ++outside;
                s1.push_back(a);
                s2.push_back(b);
            }
            fig.axes(1, k)
                .scatter(s1, s2, {.colour = "#1f2a44", .radius = 1.3, .opacity = 0.4})
                .set_title(fmt::format("{} samples ({} beyond ±{})", n_show, outside, reach))
                .set_xlabel("x₁")
                .set_ylabel("x₂")
                .set_xlim(-reach, reach)
                .set_ylim(-reach, reach)
                .equal_aspect();
        }
        const std::string path = (out_dir / "densities.svg").string();
        fig.save(path);
        fmt::print("\nFigure: {}\n", path);

        plot::Figure curves(1, 1, 560, 340);
        for (const Fit& f : fits) curves.axes(0, 0).line(f.steps, f.losses, {.label = f.label});
        curves.axes(0, 0)
            .hline(data_nll, {.colour = "#777777", .dashed = true, .label = "the data's own NLL"})
            .set_title("training loss (mean NLL of the batches)")
            .set_xlabel("step")
            .set_ylabel("nats")
            .legend();
        const std::string curve_path = (out_dir / "training.svg").string();
        curves.save(curve_path);
        fmt::print("Figure: {}\n", curve_path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("One line in your tests");
    fmt::print(
        "In a doctest file, CHECK_BIJECTOR runs the whole kit and prints the report when anything fails:\n\n"
        "    #include \"flows/conformance.hpp\"\n\n"
        "    TEST_CASE(\"SinhArcsinh conforms\") {{\n"
        "        Rng rng(0);\n"
        "        SinhArcsinh my_bijector(Tensor{{0.4, -0.6}}, Tensor{{1.5, 0.7}});\n"
        "        const Tensor points = randn(Shape{{64, 2}}, rng);\n"
        "        CHECK_BIJECTOR(my_bijector, points, {{.box_half_width = 50, .grid_points_2d = 1001}});\n"
        "        SinhArcsinh identity(2);   // what it starts as in a flow: the default options suffice\n"
        "        CHECK_BIJECTOR(identity, points);\n"
        "    }}\n\n");
    {
        Rng doc_rng(0);
        SinhArcsinh my_bijector(Tensor{0.4, -0.6}, Tensor{1.5, 0.7});
        SinhArcsinh identity(2);
        const Tensor doc_points = randn(Shape{64, 2}, doc_rng);
        verifier.check("the example's first check passes",
                       flows::check_bijector(my_bijector, doc_points, {.box_half_width = 50, .grid_points_2d = 1001}).ok);
        verifier.check("the example's second check passes", flows::check_bijector(identity, doc_points).ok);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("A custom op that captures state");
    {
        fmt::print(
            "A rule may carry state of its own, captured by value when the op is recorded. The scaled\n"
            "softsign s_c(x) = x/(c + |x|) keeps its width c in the rule, and d/dx = c/(c + |x|)².\n"
            "gradcheck for two widths, then the gradient of L = Σ s_c(x)² through the tape against\n"
            "the chain rule by hand, 2·s_c(x)·c/(c + |x|)²:\n\n");
        const Tensor x{-3.0, -0.8, -0.1, 0.2, 1.1, 4.0};
        for (const double c : {0.5, 3.0}) {
            const GradcheckResult g = gradcheck([c](const std::vector<Var>& v) { return scaled_softsign(v[0], c); }, {x});
            verifier.check(fmt::format("gradcheck of scaled_softsign, c = {}", c), g.ok, g.report);
        }
        const double c = 0.5;
        Tape tape;
        TapeScope scope(tape);
        const Var leaf = tape.variable(x);
        const Var loss = sum(square(scaled_softsign(leaf, c)));
        tape.backward(loss);
        const Tensor by_tape = tape.grad(leaf);
        const Tensor by_hand = map(x, [c](double v) { return 2 * (v / (c + std::abs(v))) * c / ((c + std::abs(v)) * (c + std::abs(v))); });
        std::vector<std::vector<std::string>> rows;
        for (std::size_t k = 0; k < x.numel(); ++k)
            rows.push_back({fmt::format("{:.1f}", x[k]), fmt::format("{:.12f}", by_tape[k]), fmt::format("{:.12f}", by_hand[k])});
        print_indented(plot::ascii_table({"x", "dL/dx by the tape", "by hand"}, rows));
        fmt::print("\n");
        verifier.check_error("dL/dx: max |tape − chain rule by hand|", max_abs_diff(by_tape, by_hand), 1e-15);
        bool rejected = false;
        try {
            (void)scaled_softsign(leaf, 0.0);
        } catch (const std::invalid_argument&) {
            rejected = true;
        }
        verifier.check("a width c = 0 is rejected with an error naming it", rejected);
    }

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("08_your_own_bijector",
                                "Write a new bijector (sinh-arcsinh), check it by hand and with the conformance kit, "
                                "watch the kit catch a log-det sign bug, then train it inside a RealNVP");
    cli.integer("--steps", {"2000", "150"}, {1, 10'000'000}, "training steps of section 6");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, [](const tapeflow::tutorial::Options& opt) { return run(opt); });
}
