// 06_radial_flow: radial flows: the determinant from two eigenvalues, the constraint β̂ ≥ −α, the closed-form inverse, U1–U4 against planar
//
// The radial flow of Rezende & Mohamed (2015) contracts or expands space around a point z₀:
// f(z) = z + β̂ h(r)(z − z₀), h(r) = 1/(α + r), r = ‖z − z₀‖. Its Jacobian has just two distinct
// eigenvalues, one across the radius (D − 1 times) and one along it, which gives its log-det in
// closed form; we check it against slogdet of the autodiff Jacobian. The map is invertible when
// β̂ ≥ −α: we show a map that violates it collapsing a whole circle onto z₀, and the
// reparameterization that enforces it. Unlike the planar flow, the inverse has a closed form (a
// quadratic in r), written so that it never cancels. Then stacks of K = 2, 8, 32 layers are fitted
// to the energies U1–U4 by reverse KL and compared with planar flows trained the same way.
//
//   ./tapeflow tutorial 06 [--steps N] [--batch N] [--lr LR] [--targets u1,u2,u3,u4] [--ks 2,8,32]
//                          [--eval-samples N] [--annealing true|false] [--confine true|false]
//                          [--compare-planar true|false]
//                          [--quick] [--out DIR] [--seed N]

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/losses.hpp"
#include "flows/planar.hpp"
#include "flows/radial.hpp"
#include "flows/targets.hpp"
#include "flows/trainer.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/stable.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/fit_figures.hpp"
#include "tutorials/common/python_export.hpp"
#include "tutorials/common/reverse_kl_fits.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

constexpr double box = tutorial::fit_box;
// More layers fit better, held to a number in the default full run: the largest K reaches this
// KL(q_box‖p_box) on every target. Radial layers bend space less than planar ones (the paper's
// Figure 3 shows them behind), so the bar is looser than tutorial 05's 0.10.
constexpr double radial_k_max_bound = 0.25;
// The annealing's warm-up of the radial full runs (and of the planar fits they are compared with).
// Tutorial 05 warms planar flows up for 10,000 steps; radial fits have not been measured with that.
constexpr std::size_t radial_warmup_steps = 5000;
// One initialization per fit: the radial fits of the default run pass their checks without restarts
// (--inits N tries N, as tutorial 05's planar fits do by default).
constexpr std::size_t radial_inits = 1;

using tutorial::Fit;
using tutorial::print_indented;
using tutorial::side_by_side;

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }

std::unique_ptr<flows::Radial> radial_layer(const Tensor& z0, double alpha_prime, double beta_prime) {
    Rng rng(0);
    auto r = std::make_unique<flows::Radial>(z0.numel(), rng);
    r->z0().value = z0.clone();
    r->alpha_prime().value = Tensor{alpha_prime};
    r->beta_prime().value = Tensor{beta_prime};
    return r;
}

// The free parameter that gives softplus(x') = x.
using stable::inverse_softplus;

int run(const tutorial::Options& opt) {
    const tutorial::FitSettings s = tutorial::read_fit_settings(opt);
    const bool compare_planar = opt.boolean("--compare-planar");
    const std::vector<std::string> targets = opt.texts("--targets");
    std::vector<std::size_t> ks;
    for (const std::int64_t k : opt.integers("--ks")) ks.push_back(static_cast<std::size_t>(k));
    std::sort(ks.begin(), ks.end());
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    const std::size_t grid = opt.quick ? 100 : 200;
    const std::filesystem::path out_dir(opt.out_dir);
    std::filesystem::create_directories(out_dir);

    Verifier verifier;
    Tape& tape = Tape::current();
    tape.clear();
    Rng rng(opt.seed);

    // ------------------------------------------------------------------------------------------
    verifier.section("The radial map and its determinant");
    fmt::print(
        "f(z) = z + β̂·h(r)·(z − z₀), h(r) = 1/(α + r), r = ‖z − z₀‖, moves every point along the ray\n"
        "from z₀: away from it (β̂ > 0) or toward it (β̂ < 0), by less the farther out it is. With\n"
        "d = z − z₀ and ∂r/∂z = dᵀ/r, the product rule gives\n"
        "    J = (1 + β̂h) I + β̂ h'(r) d dᵀ / r,   h'(r) = −1/(α + r)²,\n"
        "the identity scaled plus a rank-one matrix along d. Every v ⊥ d is an eigenvector with\n"
        "eigenvalue λ⊥ = 1 + β̂h (D − 1 of them), and d itself has λ∥ = 1 + β̂h + β̂h'r. So\n"
        "    log|det J| = (D − 1)·log(1 + β̂h) + log(1 + β̂h + β̂h'r)\n"
        "               = (D − 1)·log(1 + β̂/(α + r)) + log(1 + αβ̂/(α + r)²).\n\n"
        "A Radial layer in D = 3 with z₀ ~ N(0, 1), α′ = 0.3, β′ = −1, so α = softplus(α′) and\n"
        "β̂ = softplus(β′) − α < 0 (a contraction toward z₀):\n\n");
    {
        Rng layer_rng(opt.seed + 1);
        const Tensor z0 = randn(Shape{3}, layer_rng);
        auto layer = radial_layer(z0, 0.3, -1.0);
        const double alpha = layer->alpha(), beta = layer->beta_hat();
        const Tensor z = randn(Shape{1, 3}, rng);
        const Tensor d = z.reshape(Shape{3}) - z0;
        const double r = std::sqrt(dot(d, d));
        const double h = 1 / (alpha + r), h_prime = -h * h;
        Tensor explicit_j(Shape{3, 3});
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t j = 0; j < 3; ++j)
                explicit_j[3 * i + j] = (i == j ? 1 + beta * h : 0.0) + beta * h_prime * d[i] * d[j] / r;
        const Tensor autodiff_j = jacobian([&](const Var& x) { return layer->forward(x).value; }, z);
        fmt::print("    α = {:.6f}, β̂ = {:.6f}, r = ‖z − z₀‖ = {:.6f}\n    explicit (1 + β̂h) I + β̂h' d dᵀ/r:\n", alpha,
                   beta, r);
        print_indented(to_string(explicit_j), "        ");
        fmt::print("    autodiff:\n");
        print_indented(to_string(autodiff_j), "        ");
        verifier.check_error("max |explicit − autodiff J|", max_abs_diff(explicit_j, autodiff_j), 1e-14);

        // The eigenvalues: J d = λ∥ d, and J v = λ⊥ v for a v orthogonal to d.
        const double lambda_par = 1 + beta * h + beta * h_prime * r, lambda_perp = 1 + beta * h;
        const Tensor v = Tensor{d[1], -d[0], 0.0};  // ⊥ d
        const Tensor jd = matmul(autodiff_j, d.reshape(Shape{3, 1})).reshape(Shape{3});
        const Tensor jv = matmul(autodiff_j, v.reshape(Shape{3, 1})).reshape(Shape{3});
        fmt::print("    λ∥ = 1 + αβ̂/(α + r)² = {:.9f},  λ⊥ = 1 + β̂/(α + r) = {:.9f}\n\n", lambda_par, lambda_perp);
        verifier.check_error("J d = λ∥ d", max_abs_diff(jd, d * lambda_par), 1e-14);
        verifier.check_error("J v = λ⊥ v (v ⊥ d)", max_abs_diff(jv, v * lambda_perp), 1e-14);
        verifier.check_close("λ∥", {"eigenvalue", lambda_par}, {"1 + αβ̂/(α + r)²", 1 + alpha * beta / ((alpha + r) * (alpha + r))},
                             1e-14, 0);

        // The log-det at 16 points per D against slogdet of the autodiff Jacobian.
        for (const std::size_t dim : {2, 3, 5}) {
            Rng dim_rng(opt.seed + dim);
            auto f = radial_layer(randn(Shape{dim}, dim_rng), 0.3, -1.0);
            const Tensor zs = randn(Shape{16, dim}, dim_rng, 0.0, 1.5);
            Tensor ld;
            {
                NoGrad no_grad;
                ld = f->forward(Var(zs)).log_abs_det_jacobian.value();
            }
            double worst = 0;
            for (std::size_t i = 0; i < 16; ++i) {
                Tensor zi(Shape{1, dim});
                for (std::size_t j = 0; j < dim; ++j) zi[j] = zs[dim * i + j];
                const SignLogDet sd = slogdet(jacobian([&](const Var& x) { return f->forward(x).value; }, zi));
                worst = std::max(worst, std::abs(ld[i] - sd.log_abs_det));
            }
            verifier.check_error(fmt::format("D = {}: max |log-det − slogdet| (16 points)", dim), worst, 1e-13);
        }
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The constraint β̂ ≥ −α");
    fmt::print(
        "f keeps every ray from z₀ and moves a point at radius r to radius\n"
        "    ρ(r) = r·(1 + β̂/(α + r)) = r·(α + β̂ + r)/(α + r),\n"
        "so f is invertible iff ρ is a bijection of [0, ∞). With β̂ ≥ −α, i.e. α + β̂ ≥ 0:\n"
        "    λ⊥ = 1 + β̂/(α + r) = (α + β̂ + r)/(α + r) > 0                       for r > 0\n"
        "    λ∥ = ρ'(r) = 1 + αβ̂/(α + r)² ≥ ((α + r)² − α²)/(α + r)² > 0          for r > 0\n"
        "(using β̂ ≥ −α), so ρ is strictly increasing, and both log terms of the log-det are finite.\n\n"
        "A violating map, used raw: α = 1, β̂ = −2 (< −α). Then ρ(r) = r(r − 1)/(r + 1):\n\n");
    {
        const double alpha = 1, beta = -2;
        auto rho = [&](double r) { return r * (1 + beta / (alpha + r)); };
        std::vector<std::vector<std::string>> rows;
        for (const double r : {0.0, 0.25, 0.5, 1.0, 2.0, 4.0})
            rows.push_back({fmt::format("{:g}", r), fmt::format("{:+.6f}", rho(r)),
                            fmt::format("{:+.6f}", 1 + beta / (alpha + r)),
                            fmt::format("{:+.6f}", 1 + alpha * beta / ((alpha + r) * (alpha + r)))});
        print_indented(plot::ascii_table({"r", "ρ(r)", "λ⊥ = 1 + β̂/(α+r)", "λ∥ = 1 + αβ̂/(α+r)²"}, rows));
        // The raw map f(z) = z + β̂ (z − z₀)/(α + r) on the unit circle around z₀.
        const double z0[2] = {0.5, -0.25};
        double worst = 0;
        for (int i = 0; i < 8; ++i) {
            const double angle = 2 * std::acos(-1.0) * i / 8;
            const double z[2] = {z0[0] + std::cos(angle), z0[1] + std::sin(angle)};
            const double d[2] = {z[0] - z0[0], z[1] - z0[1]};
            const double r = std::hypot(d[0], d[1]);
            const double x[2] = {z[0] + beta * d[0] / (alpha + r), z[1] + beta * d[1] / (alpha + r)};
            worst = std::max(worst, std::hypot(x[0] - z0[0], x[1] - z0[1]));
        }
        fmt::print(
            "\nρ(0) = ρ(1) = 0: the whole circle of radius 1 around z₀ collapses onto z₀, and points\n"
            "inside it (ρ < 0) are thrown through z₀ to the other side. Not a bijection.\n\n");
        verifier.check_error("8 points at r = 1: max ‖f(z) − z₀‖", worst, 1e-15);
        verifier.check("λ⊥ < 0 at r = 0.5", 1 + beta / (alpha + 0.5) < 0, "the map flips orientation there");

        fmt::print(
            "The Radial class never sees β̂ directly: α = softplus(α′) > 0 and β̂ = −α + softplus(β′) > −α\n"
            "for every free α′, β′. Pushing β′ down drives β̂ toward −α, yet ρ stays increasing and\n"
            "the log-det finite (forward() on 2001 radii in [0, 10], α = 1):\n\n");
        std::vector<std::vector<std::string>> constrained;
        bool all_ok = true;
        for (const double beta_prime : {2.0, 0.0, -3.0, -10.0, -30.0}) {
            auto layer = radial_layer(Tensor{0.0, 0.0}, inverse_softplus(1.0), beta_prime);
            const std::size_t n = 2001;
            Tensor z(Shape{n, 2});
            for (std::size_t i = 0; i < n; ++i) {
                z[2 * i] = 10.0 * static_cast<double>(i) / static_cast<double>(n - 1);
                z[2 * i + 1] = 0;
            }
            NoGrad no_grad;
            const flows::Transformed out = layer->forward(Var(z));
            bool increasing = true, finite = true;
            for (std::size_t i = 0; i < n; ++i) {
                finite = finite && std::isfinite(out.log_abs_det_jacobian.value()[i]);
                if (i > 0) increasing = increasing && out.value.value()[2 * i] > out.value.value()[2 * i - 2];
            }
            all_ok = all_ok && increasing && finite;
            constrained.push_back({fmt::format("{:g}", beta_prime), fmt::format("{:.6g}", layer->beta_hat()),
                                   fmt::format("{:.3g}", stable::softplus(beta_prime)),
                                   fmt::format("{:.4f}", min(out.log_abs_det_jacobian.value()).item()),
                                   increasing ? "yes" : "NO", finite ? "yes" : "NO"});
        }
        print_indented(plot::ascii_table({"β′", "β̂", "α + β̂", "min log-det", "ρ increasing", "log-det finite"}, constrained));
        fmt::print(
            "\nα + β̂ is formed as softplus(β′) itself, never as the difference β̂ + α, so it keeps its digits\n"
            "even at 1e-13 (β̂ = −1 to double precision): the log-det uses (α + β̂ + r)/(α + r) in that form.\n\n");
        verifier.check("all five: ρ increasing and log-det finite", all_ok);
        {
            auto layer = radial_layer(Tensor{0.33, -0.21}, 0.2, -2.0);
            Rng points_rng(opt.seed + 7);
            const Tensor points = randn(Shape{32, 2}, points_rng, 0.0, 1.5);
            // As β̂ → −α the density piles up in a peak at z₀ of width ~ (α + β̂)²/α; the density
            // check's grid must resolve it, so it is 4× finer than the kit's default here.
            const flows::ConformanceReport report = flows::check_bijector(*layer, points, {.grid_points_2d = 801});
            fmt::print(
                "The conformance kit on a Radial layer with β̂ close to −α (α′ = 0.2, β′ = −2; its density\n"
                "check on an 801² grid, since q has a sharp peak at z₀):\n\n");
            print_indented(report.to_string());
            fmt::print("\n");
            verifier.check("conformance kit passes", report.ok, report.ok ? "all checks" : "see the report above");
        }
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The closed-form inverse");
    fmt::print(
        "Given y, the ray is known (y − z₀ points along z − z₀, scaled by λ⊥ > 0); only r is missing.\n"
        "With γ = ‖y − z₀‖, γ = ρ(r) = r(α + β̂ + r)/(α + r) is the quadratic\n"
        "    r² + a·r − αγ = 0,   a = α + β̂ − γ,\n"
        "whose roots have product −αγ ≤ 0: exactly one is ≥ 0,\n"
        "    r = (−a + √(a² + 4αγ)) / 2  =  2αγ / (a + √(a² + 4αγ)),\n"
        "then z = z₀ + (y − z₀)·(α + r)/(α + β̂ + r). The two forms are equal in exact arithmetic;\n"
        "in doubles the first cancels when a > 0 and αγ ≪ a² (y close to z₀), the second when a < 0.\n"
        "Radial::inverse picks the one without cancellation. Both on points at distance δ from z₀\n"
        "(α = 1, β̂ = 0.5), relative round-trip error |r − r_true|/r_true:\n\n");
    {
        const double alpha = 1, beta = 0.5;
        auto layer = radial_layer(Tensor{0.0, 0.0}, inverse_softplus(alpha), inverse_softplus(alpha + beta));
        std::vector<std::vector<std::string>> rows;
        double worst_stable = 0, worst_naive_small = 0;
        for (const double delta : {1e-12, 1e-8, 1e-4, 1.0, 1e4}) {
            const Tensor z{{delta, 0.0}};
            NoGrad no_grad;
            const double gamma = layer->forward(Var(z)).value.value()[0];
            const double a = alpha + beta - gamma;
            const double naive = (-a + std::sqrt(a * a + 4 * alpha * gamma)) / 2;
            const double stable_r = layer->inverse(Var(Tensor{{gamma, 0.0}})).value.value()[0];
            const double e_naive = std::abs(naive - delta) / delta, e_stable = std::abs(stable_r - delta) / delta;
            worst_stable = std::max(worst_stable, e_stable);
            if (delta <= 1e-8) worst_naive_small = std::max(worst_naive_small, e_naive);
            rows.push_back({fmt::format("{:g}", delta), fmt::format("{:.6g}", gamma), fmt::format("{:+.3g}", a),
                            fmt::format("{:.1e}", e_naive), fmt::format("{:.1e}", e_stable)});
        }
        print_indented(plot::ascii_table({"δ", "γ = ρ(δ)", "a", "(−a + √…)/2 error", "Radial::inverse error"}, rows));
        fmt::print("\n");
        verifier.check_error("Radial::inverse: worst relative error", worst_stable, 1e-14);
        verifier.check("the naive root cancels near z₀", worst_naive_small > 1e-6,
                       fmt::format("relative error {:.1e} at δ ≤ 1e-8", worst_naive_small));

        fmt::print(
            "\nA stack of 8 radial layers with z₀ ~ N(0, 1), α′, β′ ~ N(0, 1), on 4096 points z ~ N(0, 2²),\n"
            "including z = z₀ of the first layer exactly:\n\n");
        Rng stack_rng(opt.seed + 8);
        flows::Flow stack(std::make_unique<flows::StandardNormal>(2));
        for (int i = 0; i < 8; ++i) stack.add(std::make_unique<flows::Radial>(2, stack_rng, flows::RadialOptions{.init_std = 1.0}));
        Tensor z = randn(Shape{4096, 2}, stack_rng, 0.0, 2.0);
        auto& first = dynamic_cast<flows::Radial&>(stack.layer(0));
        z[0] = first.z0().value[0];
        z[1] = first.z0().value[1];
        NoGrad no_grad;
        const flows::Transformed fwd = stack.forward(Var(z));
        const flows::Transformed back = stack.inverse(fwd.value);
        const double round_trip = max_abs_diff(back.value.value(), z);
        const double log_det_gap = max(abs(back.log_abs_det_jacobian.value() + fwd.log_abs_det_jacobian.value())).item();
        fmt::print("    max |f⁻¹(f(z)) − z| = {:.2e},  max |inverse log-det + forward log-det| = {:.2e}\n\n", round_trip,
                   log_det_gap);
        verifier.check_error("stack of 8: round trip", round_trip, 1e-12);
        verifier.check_error("stack of 8: inverse log-det = −forward", log_det_gap, 1e-12);
        verifier.check("z = z₀ exactly: finite", std::isfinite(fwd.log_abs_det_jacobian.value()[0]) &&
                                                    std::isfinite(back.value.value()[0]),
                       fmt::format("log-det {:.6f}", fwd.log_abs_det_jacobian.value()[0]));
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Fitting U1–U4 by reverse KL");
    fmt::print(
        "Flow: N(0, I₂) → K radial layers (z₀, α′, β′ ~ N(0, 0.1²): α ≈ ln 2, β̂ ≈ 0, close to the\n"
        "identity). Loss and loop as in tutorial 05: mean[log q(x) + β_t·U(x)] over x = f(z), z ~ N(0, I),\n"
        "by flows::train_reverse_kl_best_of. {} steps, batch {}, Adam lr {:g}{}, {}.\n"
        "{}\n"
        "Evaluated at β = 1 on {} fresh samples: loss = E_q[log q + U], KL_box = loss + log Z_box,\n"
        "q(box) = the mass of q in (−4, 4)², and KL(q_box‖p_box), q conditioned on the box against\n"
        "exp(−U)/Z_box (flows::evaluate_box_kl), a KL divergence that is never negative. {}\n\n",
        s.steps, s.batch, s.lr, s.cosine ? " falling to 0 along a cosine" : " (constant)",
        s.annealing ? fmt::format("annealing β_t = min(1, 0.01 + t/{}) (a warm-up of the first {} steps)", s.annealing->warmup_steps,
                                  s.annealing->warmup_steps)
                    : std::string("no annealing (β = 1 throughout)"),
        tutorial::restart_text(s), s.eval_samples,
        s.confine ? "U2–U4 get tutorial 05's wall\n"
                    "outside the box, W(z) = Σᵢ ½(max(0, |zᵢ| − 4)/0.1)², without which their loss has no minimum."
                  : "--confine false: U2–U4 are\n"
                    "trained raw, and q is free to leave the box along z₁.");
    std::vector<Fit> radial_fits, planar_fits;
    const tutorial::FlowMaker radial_maker = [](std::size_t k, Rng& init) { return tutorial::radial_stack(k, init); };
    const tutorial::FlowMaker planar_maker = [](std::size_t k, Rng& init) { return tutorial::planar_stack(k, init, true); };
    for (const std::string& name : targets) {
        const flows::Target& target = flows::target(name);
        fmt::print("  {}: {}   log Z_box = {:.4f}\n", name, target.description, flows::log_partition_box(target.energy, box));
        for (const std::size_t k : ks) radial_fits.push_back(tutorial::run_fit("radial", radial_maker, target, k, s));
    }
    fmt::print("\nRadial:\n\n");
    print_indented(tutorial::fit_table(radial_fits));
    fmt::print("\nThe columns are those of tutorial 05. Times are for the training loop alone; CPU time is what\nthe process used.\n\n");
    for (const Fit& f : radial_fits) tutorial::check_fit(verifier, f);
    const bool defaults = tutorial::default_fit_run(opt);
    if (defaults) {
        fmt::print("\nMore layers fit better, per target, at the default settings:\n\n");
        tutorial::check_more_layers_fit_better(verifier, radial_fits, radial_k_max_bound);
    } else {
        fmt::print("\n(Not the default full run, so the checks of \"more layers fit better\" are skipped.)\n");
    }
    tutorial::seed_sweep(verifier, opt, "radial", radial_maker, targets, ks, s, radial_fits,
                         defaults ? std::optional<double>(radial_k_max_bound) : std::nullopt);

    // ------------------------------------------------------------------------------------------
    verifier.section("Radial against planar");
    if (!compare_planar) {
        fmt::print("(--compare-planar false: skipped. Tutorial 05 has the planar table at the same settings.)\n\n");
    } else {
        fmt::print(
            "Planar flows at the same settings and from the seeds of tutorial 05 (whose default warm-up is\n"
            "longer, so its planar table differs from this one).\n"
            "Per layer, planar has 2D + 1 = 5 parameters, radial D + 2 = 4.\n\n");
        for (const std::string& name : targets)
            for (const std::size_t k : ks) planar_fits.push_back(tutorial::run_fit("planar", planar_maker, flows::target(name), k, s));
        fmt::print("\nPlanar:\n\n");
        print_indented(tutorial::fit_table(planar_fits));
        std::vector<std::vector<std::string>> both;
        for (std::size_t i = 0; i < radial_fits.size(); ++i) {
            const Fit &p = planar_fits[i], &r = radial_fits[i];
            both.push_back({r.target->name, fmt::format("{}", r.k), fmt::format("{:.4f}", p.after.kl_box),
                            fmt::format("{:.4f}", r.after.kl_box), fmt::format("{:.4f}", p.box_after.kl),
                            fmt::format("{:.4f}", r.box_after.kl),
                            fmt::format("{:.3f}", 1000 * p.cpu / static_cast<double>(tutorial::trained_steps(s))),
                            fmt::format("{:.3f}", 1000 * r.cpu / static_cast<double>(tutorial::trained_steps(s)))});
        }
        fmt::print(
            "\nSide by side (lower is better; KL_c = KL(q_box‖p_box); CPU milliseconds per training step):\n\n");
        print_indented(plot::ascii_table({"target", "K", "planar KL_box", "radial KL_box", "planar KL_c", "radial KL_c",
                                          "planar ms/step", "radial ms/step"},
                                         both));
        fmt::print("\n");
        for (const Fit& f : planar_fits) tutorial::check_fit(verifier, f);

        plot::Figure fig(1, static_cast<int>(targets.size()), 360, 300);
        fig.title("KL(q_box ‖ p_box) against the number of layers K");
        for (std::size_t t = 0; t < targets.size(); ++t) {
            std::vector<double> ks, kl_planar, kl_radial;
            for (std::size_t i = 0; i < radial_fits.size(); ++i) {
                if (radial_fits[i].target->name != targets[t]) continue;
                ks.push_back(static_cast<double>(radial_fits[i].k));
                kl_planar.push_back(planar_fits[i].box_after.kl);
                kl_radial.push_back(radial_fits[i].box_after.kl);
            }
            plot::Axes& ax = fig.axes(0, static_cast<int>(t));
            ax.set_title(targets[t]).set_xlabel("K").set_ylabel("KL (nats)").set_log_x();
            ax.line(ks, kl_planar, {.colour = "#1f77b4", .label = "planar"});
            ax.scatter(ks, kl_planar, {.colour = "#1f77b4"});
            ax.line(ks, kl_radial, {.colour = "#d62728", .label = "radial"});
            ax.scatter(ks, kl_radial, {.colour = "#d62728"});
            ax.legend();
        }
        const std::string path = (out_dir / "kl_vs_k.svg").string();
        fig.save(path);
        fmt::print("Figure: {}\n\n", path);
        verifier.check("figure written", std::filesystem::file_size(path) > 0);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Densities, true and learned");
    const std::size_t k_max = *std::max_element(ks.begin(), ks.end());
    fmt::print(
        "Each radial flow's density q(x) on a {0}×{0} grid of (−4, 4)², by the closed-form inverse at\n"
        "every grid point (density_grid), next to exp(−U)/Z_box{1}.\n"
        "Each row of the figure shares one colour scale; in the terminal each panel is scaled on its own:\n\n",
        grid, compare_planar ? fmt::format("\nand the planar flow with K = {}", k_max) : "");
    // Every radial fit is a panel and a solid curve; the planar fits are dashed curves, and the one
    // with the largest K is the row's last panel.
    std::vector<tutorial::FigureFit> drawn;
    const auto entry = [](Fit& f, bool panel, bool dashed) {
        return tutorial::FigureFit{.fit = &f,
                                   .label = fmt::format("{} K = {}", f.family, f.k),
                                   .array_name = fmt::format("{}_K{}", f.family, f.k),
                                   .panel = panel,
                                   .dashed = dashed};
    };
    for (Fit& f : radial_fits) drawn.push_back(entry(f, true, false));
    for (Fit& f : planar_fits) drawn.push_back(entry(f, f.k == k_max, true));
    tutorial::draw_fit_figures(
        verifier, targets, drawn, grid,
        {.density_title = fmt::format("Radial flows fitted by reverse KL ({} steps): true density and q for K = {}{}", s.steps,
                                      fmt::join(ks, ", "), compare_planar ? fmt::format("; planar K = {} last", k_max) : ""),
         .curves_title = "KL(q_box ‖ p_box) during training: radial (solid), planar (dashed)",
         .ascii_width = 22,
         .ascii_height = 11},
        out_dir, opt.seed + 6);

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("06_radial_flow",
                                "Radial flows: the determinant from two eigenvalues, the constraint β̂ ≥ −α, the "
                                "closed-form inverse, U1–U4 against planar");
    tapeflow::tutorial::declare_fit_options(cli, radial_warmup_steps, radial_inits)
        .boolean("--compare-planar", "true", "also fit planar flows at the same settings and compare");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
