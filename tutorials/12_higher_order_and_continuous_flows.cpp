// 12_higher_order_and_continuous_flows: Jacobians by forward and reverse mode, a Hessian by reverse- and forward-over-reverse and a Newton step, the instantaneous change of variables, RK4 on the tape, the trace by forward or reverse mode, exact trace vs Hutchinson, a CNF against RealNVP
//
// Autodiff past first order, then the flow it unlocks. First the Hessian of a small log density by
// reverse-over-reverse (grad with create_graph) against the hand formula and finite differences, and a
// Newton step with it. Then the continuous normalizing flow (Chen et al. 2018; Grathwohl et al. 2019, FFJORD), derived and checked
// step by step: the discrete change of variables of tutorials 03-04 becomes the instantaneous one as the
// steps shrink; RK4 integrates it on the tape, with its order measured and its gradient checked; log q is
// held against the slogdet of the whole integrated map; the trace of ∂f/∂z is computed exactly or by
// Hutchinson's estimator (its variance measured against its formula); and a CNF is trained on two moons
// and 8 gaussians beside tutorial 07's RealNVP, its density and its trajectories drawn. Training needs
// d/dθ of a trace: a second derivative of the field.
// The formulas: docs/theory.md §11 (higher-order autodiff) and §12 (continuous flows).
//
//   ./tapeflow tutorial 12 [--steps N] [--batch N] [--lr LR] [--solver-steps S] [--hidden H]
//                          [--hutchinson true|false] [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/functional.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/cnf.hpp"
#include "flows/datasets.hpp"
#include "flows/distributions.hpp"
#include "flows/realnvp.hpp"
#include "flows/trainer.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/model_comparison.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;
using tutorial::cpu_seconds;
using tutorial::print_indented;

// ---- shared by the first sections ------------------------------------------------------------------

using VarMap = std::function<Var(const Var&)>;

// A central-difference Jacobian of f at x (flattened), step 1e-6: the independent check. f sees
// constants, so nothing of its own is recorded (a gradient inside it records on a tape of its own).
Tensor central_difference_jacobian(const VarMap& f, const Tensor& x) {
    const std::size_t n = x.numel(), m = f(Var(x)).numel();
    Tensor J(Shape{m, n});
    for (std::size_t j = 0; j < n; ++j) {
        Tensor plus = x.clone(), minus = x.clone();
        plus[j] += 1e-6;
        minus[j] -= 1e-6;
        const Tensor fp = f(Var(plus)).value(), fm = f(Var(minus)).value();
        for (std::size_t i = 0; i < m; ++i) J[i * n + j] = (fp[i] - fm[i]) / 2e-6;
    }
    return J;
}

// ---- 1. forward and reverse mode ------------------------------------------------------------------

// f(x) = tanh(x W₁) W₂ for x [n] -> [m]: a map whose shape alone decides which mode is cheaper.
VarMap two_layer_map(const Tensor& w1, const Tensor& w2) {
    return [w1, w2](const Var& x) {
        const std::size_t n = w1.shape()[0], m = w2.shape()[1];
        return reshape(matmul(tanh(matmul(reshape(x, Shape{1, n}), Var(w1))), Var(w2)), Shape{m});
    };
}

void section_modes(Verifier& verifier, std::uint64_t seed, bool quick) {
    verifier.section("Forward and reverse mode");
    fmt::print(
        "For f: Rⁿ → Rᵐ, forward mode pushes a tangent v through f and returns J·v, one column of J per\n"
        "pass (v = e_j: n passes); reverse mode pulls a cotangent u back and returns Jᵀu, one row per pass\n"
        "(u = e_i: m passes) (docs/theory.md §11). A forward pass here is f itself with each op's tangent\n"
        "rule run as the op is recorded, ẏ = Σ_k (∂y/∂x_k)·ẋ_k: no sweep of the tape at all.\n"
        "jacobian(f, x, JacobianMode::forward|reverse) both ways on f(x) = tanh(x W₁) W₂, a tall map (few\n"
        "inputs, many outputs) and a wide one, CPU time of one run:\n\n");
    std::vector<std::vector<std::string>> rows;
    const std::size_t big = quick ? 48 : 256, small = 4, hidden = 32, repeats = quick ? 2 : 5;
    for (const bool tall : {true, false}) {
        const std::size_t n = tall ? small : big, m = tall ? big : small;
        Rng rng(seed + (tall ? 21 : 22));
        const Tensor w1 = randn(Shape{n, hidden}, rng, 0.0, 1.0 / std::sqrt(static_cast<double>(n)));
        const Tensor w2 = randn(Shape{hidden, m}, rng, 0.0, 1.0 / std::sqrt(static_cast<double>(hidden)));
        const VarMap f = two_layer_map(w1, w2);
        const Tensor x = randn(Shape{n}, rng);
        Tensor forward, reverse;
        double forward_s = 0, reverse_s = 0;
        for (std::size_t r = 0; r < repeats; ++r) {
            double start = cpu_seconds();
            forward = jacobian(f, x, JacobianMode::forward);
            forward_s += (cpu_seconds() - start) / static_cast<double>(repeats);
            start = cpu_seconds();
            reverse = jacobian(f, x, JacobianMode::reverse);
            reverse_s += (cpu_seconds() - start) / static_cast<double>(repeats);
        }
        const Tensor fd = central_difference_jacobian(f, x);
        if (tall) {
            // One pass: jvp records f's ops once and nothing else (a reverse sweep, or the double-vjp
            // construction, would record the backward's ops on top).
            Tape tape;
            TapeScope scope(tape);
            const Var leaf = tape.variable(x);
            (void)f(leaf);
            const std::size_t f_nodes = tape.size() - 1;
            Tensor v = Tensor::zeros(Shape{n});
            v[0] = 1.0;
            const Tensor column = jvp(f, leaf, v).product.value();
            verifier.check("jvp is one forward pass: nodes it records vs nodes of f alone", tape.size() - 1 == 2 * f_nodes,
                           fmt::format("{} vs {}", tape.size() - 1 - f_nodes, f_nodes));
            double worst = 0;
            for (std::size_t i = 0; i < m; ++i) worst = std::max(worst, std::abs(column[i] - fd[i * n]));
            verifier.check_close("tall: jvp along e₀ vs column 0 of the central differences", {"max |J·e₀ − FD|", worst},
                                 {"zero", 0.0}, 0, 1e-7);
        }
        const std::string shape = fmt::format("{} ({} → {})", tall ? "tall" : "wide", n, m);
        rows.push_back({shape, fmt::format("{} JVPs", n), fmt::format("{:.3f}", 1e3 * forward_s), fmt::format("{} VJPs", m),
                        fmt::format("{:.3f}", 1e3 * reverse_s), fmt::format("{:.2f}", reverse_s / forward_s),
                        fmt::format("{:.1e}", max_abs_diff(forward, fd))});
        verifier.check(shape + ": J has shape f(x) ++ x", forward.shape() == Shape{m, n} && reverse.shape() == Shape{m, n},
                       fmt::format("{} outputs × {} inputs", m, n));
        verifier.check_error(shape + ": forward-mode J vs reverse-mode J", max_abs_diff(forward, reverse), 1e-12);
        verifier.check_error(shape + ": forward-mode J vs central differences", max_abs_diff(forward, fd), 1e-7);
    }
    print_indented(plot::ascii_table({"shape", "forward mode", "CPU ms", "reverse mode", "CPU ms", "reverse / forward", "max |J − FD|"}, rows));
    fmt::print(
        "\nThe mode with fewer passes should be the cheaper one: forward for the tall map, reverse for the\n"
        "wide one (the ratio is timing, printed and not checked). A forward pass runs f again with its\n"
        "tangents (values and tangents: about twice f's work), a reverse pass sweeps the one recording of\n"
        "f, so per pass forward mode costs somewhat more; the pass count still decides. A gradient (m = 1)\n"
        "is one reverse pass whatever n is: why training uses reverse mode.\n\n");
}

// ---- 2. Hessians ---------------------------------------------------------------------------------

// log p of a "banana": x₁ ~ N(0, σ²), x₂ | x₁ ~ N(x₁², s²) (up to its constant).
constexpr double banana_sigma = 1.2, banana_s = 0.5;

Var banana_log_p(const Var& x) {
    const Var x1 = narrow(x, 0, 0, 1), x2 = narrow(x, 0, 1, 1);
    const Var u = x2 - square(x1);
    return sum(-0.5 * square(x1) / (banana_sigma * banana_sigma) - 0.5 * square(u) / (banana_s * banana_s));
}

// The Hessian of f at x [n] by reverse-over-reverse: ∇f recorded (create_graph), then one reverse pass
// per entry of it, row i = ∇(∂f/∂x_i).
Tensor hessian_by_reverse_over_reverse(const VarMap& f, const Tensor& x) {
    Tape tape;
    TapeScope scope(tape);
    const Var leaf = tape.variable(x);
    const Var g = grad(f(leaf), {leaf}, GradOptions{.create_graph = true})[0];
    const std::size_t n = x.numel();
    Tensor h(Shape{n, n});
    for (std::size_t i = 0; i < n; ++i) {
        const Tensor row = grad(sum(narrow(g, 0, i, 1)), {leaf}, GradOptions{})[0].value();
        for (std::size_t j = 0; j < n; ++j) h[i * n + j] = row[j];
    }
    return h;
}

// The Hessian of f at x [n] by forward-over-reverse: column j = the tangent of the recorded ∇f along
// e_j (hvp with HvpMode::forward_over_reverse: the tangents flow through the recorded backward).
Tensor hessian_by_forward_over_reverse(const VarMap& f, const Tensor& x) {
    const std::size_t n = x.numel();
    Tensor h(Shape{n, n});
    for (std::size_t j = 0; j < n; ++j) {
        Tape tape;
        TapeScope scope(tape);
        Tensor e = Tensor::zeros(Shape{n});
        e[j] = 1.0;
        const Tensor column = hvp(f, tape.variable(x), e, HvpMode::forward_over_reverse).value();
        for (std::size_t i = 0; i < n; ++i) h[i * n + j] = column[i];
    }
    return h;
}

// ∇f at x as a plain tensor (one reverse pass).
Tensor gradient_at(const VarMap& f, const Tensor& x) {
    Tape tape;
    TapeScope scope(tape);
    const Var leaf = tape.variable(x);
    return grad(f(leaf), {leaf}, GradOptions{})[0].value();
}

// The Hessian by hand: with u = x₂ − x₁², ∂²/∂x₁² = −1/σ² + (2u − 4x₁²)/s², ∂²/∂x₁∂x₂ = 2x₁/s², ∂²/∂x₂² = −1/s².
Tensor banana_hessian_by_hand(const Tensor& x) {
    const double s2 = banana_s * banana_s, u = x[1] - x[0] * x[0];
    const double h11 = -1 / (banana_sigma * banana_sigma) + (2 * u - 4 * x[0] * x[0]) / s2, h12 = 2 * x[0] / s2;
    return Tensor{{h11, h12}, {h12, -1 / s2}};
}

void section_hessian(Verifier& verifier) {
    verifier.section("The Hessian of a log density");
    const Tensor x{0.7, 0.2};
    const Tensor by_hand = banana_hessian_by_hand(x);
    // The Hessian is the Jacobian of the gradient; each mode of the outer Jacobian gives one recipe.
    const Tensor reverse_over_reverse = hessian_by_reverse_over_reverse(banana_log_p, x);
    const Tensor forward_over_reverse = hessian_by_forward_over_reverse(banana_log_p, x);
    const Tensor fd = central_difference_jacobian([](const Var& v) { return Var(gradient_at(banana_log_p, v.value())); }, x);
    fmt::print(
        "The banana log p(x) = −x₁²/(2σ²) − (x₂ − x₁²)²/(2s²), σ = {}, s = {}, at x = ({}, {}). Its Hessian is\n"
        "the Jacobian of ∇log p, with ∇log p recorded on the tape (grad with create_graph):\n"
        "reverse-over-reverse differentiates that recorded gradient backwards, one pass per row;\n"
        "forward-over-reverse pushes e_j forwards through it, one column per pass (docs/theory.md §11).\n"
        "Against the Hessian by hand and central differences of the gradient:\n\n",
        banana_sigma, banana_s, x[0], x[1]);
    std::vector<std::vector<std::string>> rows;
    const auto add = [&](const std::string& how, const Tensor& h) {
        rows.push_back({how, fmt::format("{:.10f}", h[0]), fmt::format("{:.10f}", h[1]), fmt::format("{:.10f}", h[2]),
                        fmt::format("{:.10f}", h[3])});
    };
    add("by hand", by_hand);
    add("reverse-over-reverse", reverse_over_reverse);
    add("forward-over-reverse", forward_over_reverse);
    add("central differences of ∇", fd);
    print_indented(plot::ascii_table({"", "H₁₁", "H₁₂", "H₂₁", "H₂₂"}, rows));
    fmt::print("\n");
    verifier.check_error("reverse-over-reverse vs by hand", max_abs_diff(reverse_over_reverse, by_hand), 1e-12);
    verifier.check_error("forward-over-reverse vs by hand", max_abs_diff(forward_over_reverse, by_hand), 1e-12);
    verifier.check_error("forward-over-reverse vs central differences of ∇", max_abs_diff(forward_over_reverse, fd), 1e-6);
    verifier.check_error("finite differences of ∇ vs by hand", max_abs_diff(fd, by_hand), 1e-6);
}

// ---- 3. a Newton step ----------------------------------------------------------------------------

void section_newton(Verifier& verifier) {
    verifier.section("A Newton step");
    fmt::print(
        "Newton's method for the mode of log p: x ← x − H⁻¹ ∇log p, H from reverse-over-reverse. On a\n"
        "quadratic (a Gaussian) one step is exact; on the banana, whose mode is (0, 0), the error squares\n"
        "from step to step once it is small (quadratic convergence):\n\n");
    // A Gaussian first: log p = −½ (x − μ)ᵀ A (x − μ), one step from anywhere lands on μ.
    const Tensor A{{2.0, 0.6}, {0.6, 1.0}}, mu{1.5, -0.5};
    const VarMap gaussian = [&](const Var& x) {
        const Var d = reshape(x - Var(mu), Shape{1, 2});
        return sum(-0.5 * matmul(d, Var(A)) * d);
    };
    const Tensor x0{-2.0, 3.0};
    const Tensor step = x0 - solve(hessian_by_reverse_over_reverse(gaussian, x0), gradient_at(gaussian, x0));
    fmt::print("    Gaussian, from ({}, {}): one step to ({:.15f}, {:.15f}); μ = ({}, {})\n\n", x0[0], x0[1], step[0], step[1],
               mu[0], mu[1]);
    verifier.check_error("one Newton step on a Gaussian lands on μ", max_abs_diff(step, mu), 1e-13);
    Tensor x{0.3, 0.15};
    std::vector<std::vector<std::string>> rows;
    std::vector<double> errors;
    for (int k = 0; k < 10; ++k) {
        const double error = std::hypot(x[0], x[1]);
        errors.push_back(error);
        rows.push_back({fmt::format("{}", k), fmt::format("{:.15f}", x[0]), fmt::format("{:.15f}", x[1]),
                        fmt::format("{:.3e}", error),
                        k == 0 || errors[k - 1] == 0 ? "" : fmt::format("{:.3f}", error / (errors[k - 1] * errors[k - 1]))});
        if (error < 1e-14) break;
        x = x - solve(hessian_by_reverse_over_reverse(banana_log_p, x), gradient_at(banana_log_p, x));
    }
    print_indented(plot::ascii_table({"step", "x₁", "x₂", "‖x − mode‖", "error / previous error²"}, rows));
    fmt::print("\n");
    verifier.check_error("Newton on the banana: distance to the mode after the last step", errors.back(), 1e-12);
}

// ---- 4. the instantaneous change of variables ----------------------------------------------------

// The Jacobian ∂f/∂z of the field at one point z [1, D] and time t, by the first-order engine.
Tensor field_jacobian(flows::TimeDependentField& field, const Tensor& z, double t) {
    return jacobian([&](const Var& v) { return field.forward(v, t); }, z);
}

double trace_of(const Tensor& m) {
    const std::size_t d = m.shape()[0];
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) s += m[i * d + i];
    return s;
}

void section_instantaneous(Verifier& verifier, flows::CNF& cnf, const Tensor& z0) {
    verifier.section("The instantaneous change of variables");
    flows::TimeDependentField& field = cnf.field();
    const Tensor J = field_jacobian(field, z0, 0.0);
    const std::size_t d = J.shape()[0];
    const double tr = trace_of(J), tr_j2 = trace_of(matmul(J, J));
    fmt::print(
        "One Euler step of dz/dt = f(z, t) is the map g(z) = z + h f(z, t). Tutorials 03-04 give its density\n"
        "change: log p(g(z)) = log p(z) − log|det(I + h ∂f/∂z)|. For small h (docs/theory.md §12),\n\n"
        "    log|det(I + hJ)| = h tr J − (h²/2) tr(J²) + O(h³),\n\n"
        "so the log-det of one step is h tr J up to O(h²). At z = ({:.3f}, {:.3f}), t = 0, for the CNF's\n"
        "field (random weights): tr J = {:.6f}, tr J² = {:.6f}.\n\n",
        z0[0], z0[1], tr, tr_j2);
    std::vector<std::vector<std::string>> rows;
    double previous = 0, ratio = 0, rest_last = 0;
    for (const double h : {0.1, 0.05, 0.025, 0.0125}) {
        Tensor m = J * h;
        for (std::size_t i = 0; i < d; ++i) m[i * d + i] += 1.0;
        const double exact = slogdet(m).log_abs_det;
        const double gap = exact - h * tr;
        // What remains after the second-order term: h³ tr(J³)/3 − h⁴ tr(J⁴)/4 + … (the log series).
        rest_last = (gap + 0.5 * h * h * tr_j2) / (h * h * h);
        if (previous != 0) ratio = previous / gap;
        rows.push_back({fmt::format("{:g}", h), fmt::format("{:.10f}", exact), fmt::format("{:.10f}", h * tr),
                        fmt::format("{:.3e}", gap), fmt::format("{:.4f}", gap / (h * h)),
                        previous == 0 ? "" : fmt::format("{:.3f}", ratio)});
        previous = gap;
    }
    print_indented(plot::ascii_table({"h", "log|det(I + hJ)| (slogdet)", "h tr J", "difference", "difference / h²",
                                      "ratio to previous"},
                                     rows));
    fmt::print("\n    −tr(J²)/2 = {:.4f}: the limit of difference / h².\n\n", -0.5 * tr_j2);
    verifier.check_close("difference ratio when h halves", {"measured", ratio}, {"O(h²): 4", 4.0}, 0.05, 0);
    verifier.check_close("difference / h² at h = 0.0125", {"measured", previous / (0.0125 * 0.0125)},
                         {"−tr(J²)/2", -0.5 * tr_j2}, 0.05, 1e-3);
    {
        // log det(I + hJ) = tr log(I + hJ) = Σ_k (−1)^(k+1) h^k tr(J^k)/k: at h = 0.0125 the rest after
        // the h² term, divided by h³, is tr(J³)/3 up to the next term, h·tr(J⁴)/4 (allowed twice over).
        const double h = 0.0125;
        const Tensor j2 = matmul(J, J);
        const double tr_j3 = trace_of(matmul(j2, J)), tr_j4 = trace_of(matmul(j2, j2));
        verifier.check_close("rest after the h² term, / h³", {"measured", rest_last}, {"tr(J³)/3", tr_j3 / 3}, 0,
                             2 * h * std::abs(tr_j4) / 4 + 1e-6);
    }

    fmt::print(
        "\nA chain of S Euler steps of size h = 1/S from t = 0 to 1 is a discrete flow, and its log-dets add\n"
        "(tutorial 04): Σ_k log|det(I + h J(z_k, t_k))|. Each term is h tr J(z_k, t_k) + O(h²), so the sum is a\n"
        "Riemann sum of ∫₀¹ tr J dt plus S·O(h²) = O(h): as the steps shrink, the discrete change of variables\n"
        "becomes the instantaneous one, log|det ∂z(1)/∂z(0)| = ∫₀¹ tr(∂f/∂z) dt (Chen et al. 2018, eq. 4).\n"
        "Against the integral that the CNF's RK4 solver computes (256 steps, error ~1e-10):\n\n");
    const std::size_t saved_steps = cnf.steps();
    cnf.set_steps(256);
    double integral = 0;
    {
        NoGrad no_grad;
        integral = cnf.forward(Var(z0)).log_abs_det_jacobian.item();
    }
    cnf.set_steps(saved_steps);
    rows.clear();
    double last_gap = 0, chain_ratio = 0;
    for (const std::size_t steps : {8u, 16u, 32u, 64u}) {
        const double h = 1.0 / static_cast<double>(steps);
        Tensor z = z0.clone();
        double chain = 0;
        for (std::size_t k = 0; k < steps; ++k) {
            const double t = static_cast<double>(k) * h;
            Tensor m = field_jacobian(field, z, t) * h;
            for (std::size_t i = 0; i < d; ++i) m[i * d + i] += 1.0;
            chain += slogdet(m).log_abs_det;
            NoGrad no_grad;
            z = z + field.forward(Var(z), t).value() * h;
        }
        const double gap = chain - integral;
        if (last_gap != 0) chain_ratio = last_gap / gap;
        rows.push_back({fmt::format("{}", steps), fmt::format("{:.8f}", chain), fmt::format("{:.3e}", gap),
                        last_gap == 0 ? "" : fmt::format("{:.3f}", chain_ratio)});
        last_gap = gap;
    }
    print_indented(plot::ascii_table({"Euler steps S", "Σ log|det(I + hJ_k)|", "minus ∫ tr J dt", "ratio to previous"}, rows));
    fmt::print("\n    ∫₀¹ tr(∂f/∂z) dt along the path (RK4, 256 steps) = {:.10f}\n\n", integral);
    verifier.check_close("Euler chain's gap ratio when S doubles", {"measured", chain_ratio}, {"O(h): 2", 2.0}, 0.1, 0);
    verifier.check_close("log-det", {"Euler chain, S = 64", last_gap + integral}, {"∫ tr J dt (RK4)", integral}, 0, 0.05);
}

// ---- 5. RK4 on the tape -------------------------------------------------------------------------

void section_rk4(Verifier& verifier, std::uint64_t seed) {
    verifier.section("RK4 on the tape");
    fmt::print(
        "The CNF integrates [z, ℓ] with the classical Runge–Kutta method (flows/ode.hpp): four evaluations of\n"
        "the field per step, global error O(h⁴). Every stage is recorded, so backward differentiates the\n"
        "solver itself (\"discretize, then optimize\"; the adjoint method of Chen et al. 2018 would instead\n"
        "solve a second ODE backwards and keep no tape). First the order, on a small random field, against\n"
        "a 512-step reference:\n\n");
    flows::CNF cnf({.dim = 2, .hidden = {8, 8}, .steps = 512, .seed = seed});
    Rng rng(seed + 7);
    const Tensor z = randn(Shape{3, 2}, rng);
    const auto solve = [&](std::size_t steps) {
        cnf.set_steps(steps);
        NoGrad no_grad;
        const flows::Transformed out = cnf.forward(Var(z));
        return std::pair<Tensor, Tensor>{out.value.value(), out.log_abs_det_jacobian.value()};
    };
    const auto reference = solve(512);
    std::vector<std::vector<std::string>> rows;
    double previous = 0, ratio = 0;
    for (const std::size_t steps : {2u, 4u, 8u, 16u}) {
        const auto got = solve(steps);
        const double error = std::max(max_abs_diff(got.first, reference.first), max_abs_diff(got.second, reference.second));
        if (previous != 0) ratio = previous / error;
        rows.push_back({fmt::format("{}", steps), fmt::format("{:.3e}", error), previous == 0 ? "" : fmt::format("{:.2f}", ratio)});
        previous = error;
    }
    print_indented(plot::ascii_table({"steps", "max error of (z(1), ℓ(1))", "ratio to previous"}, rows));
    fmt::print("\n");
    verifier.check_close("error ratio when the step halves", {"measured", ratio}, {"O(h⁴): 16", 16.0}, 0.2, 0);

    fmt::print(
        "\nThen the gradient through 4 steps (16 field evaluations, each carrying the trace's two tangents):\n"
        "gradcheck of (z(1), ℓ(1)) with respect to z(0) and all {} weights of the field, against central\n"
        "differences. The weights' gradient of ℓ is a second derivative of f (reverse over forward):\n\n",
        cnf.parameter_count());
    cnf.set_steps(4);
    GradcheckOptions options;
    options.parameters = cnf.parameters();
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Var>& in) {
            const flows::Transformed out = cnf.forward(in[0]);
            return concat({reshape(out.value, Shape{out.value.numel()}), out.log_abs_det_jacobian}, 0);
        },
        {narrow(z, 0, 0, 2).clone()}, options);
    print_indented(r.report);
    fmt::print("\n");
    verifier.check("gradcheck through the RK4 solver", r.ok,
                   fmt::format("worst |analytic − numeric| {:.2e}", r.error));
}

// ---- 6. the CNF's density ------------------------------------------------------------------------

void section_density(Verifier& verifier, std::uint64_t seed) {
    verifier.section("The CNF's log-density, checked");
    fmt::print(
        "As a bijector, the CNF's inverse runs t from 1 to 0 and returns ℓ(0) = −∫₀¹ tr dt; the flow adds\n"
        "log p_z (tutorial 04's formula): log q(x) = log p_z(z(0)) − ∫₀¹ tr(∂f/∂z) dt. Brute force instead\n"
        "differentiates the whole integrated map: the autodiff Jacobian of x ↦ z(0) (through every RK4\n"
        "stage) and its slogdet. The two differ by the solver's error in ℓ, O(h⁴):\n\n");
    auto flow = flows::make_cnf({.dim = 2, .hidden = {16, 16}, .seed = seed});
    auto& cnf = dynamic_cast<flows::CNF&>(flow->layer(0));
    Rng rng(seed + 11);
    const Tensor x = randn(Shape{4, 2}, rng);
    flows::StandardNormal base(2);
    std::vector<std::vector<std::string>> rows;
    double previous = 0, ratio = 0, round_trip = 0;
    for (const std::size_t steps : {4u, 8u, 16u}) {
        cnf.set_steps(steps);
        double worst = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            const Tensor xi = narrow(x, 0, i, 1).clone();
            Tape tape;
            TapeScope scope(tape);
            const double by_flow = flow->log_prob(Var(xi)).item();
            const Tensor zi = cnf.inverse(Var(xi)).value.value();
            const Tensor J = jacobian([&](const Var& v) { return cnf.inverse(v).value; }, xi);
            const double brute = base.log_prob(Var(zi)).item() + slogdet(J).log_abs_det;
            worst = std::max(worst, std::abs(by_flow - brute));
            round_trip = std::max(round_trip, max_abs_diff(cnf.forward(Var(zi)).value.value(), xi));
        }
        if (previous != 0) ratio = previous / worst;
        rows.push_back({fmt::format("{}", steps), fmt::format("{:.3e}", worst), previous == 0 ? "" : fmt::format("{:.2f}", ratio),
                        fmt::format("{:.2e}", round_trip)});
        previous = worst;
        round_trip = 0;
    }
    print_indented(plot::ascii_table({"RK4 steps", "max |log q − brute force|", "ratio", "max |f(f⁻¹(x)) − x|"}, rows));
    fmt::print("\n");
    verifier.check_close("log q error ratio when h halves", {"measured", ratio}, {"O(h⁴): 16", 16.0}, 0.25, 0);
    verifier.check_error("max |log q − brute force| at 16 steps", previous, 1e-5);
}

// ---- 7. exact trace vs Hutchinson ---------------------------------------------------------------

void section_hutchinson(Verifier& verifier, std::uint64_t seed, bool quick) {
    verifier.section("Exact trace vs Hutchinson");
    Rng field_rng(seed + 5);
    flows::TimeDependentField field(2, {16, 16}, field_rng);
    Rng rng(seed + 13);
    const Tensor z = randn(Shape{1, 2}, rng);
    const Tensor J = field_jacobian(field, z, 0.5);
    const double s01 = 0.5 * (J[1] + J[2]);
    const double rademacher_var = 2 * 2 * s01 * s01;                               // 2 Σ_{i≠j} S_ij²
    const double gaussian_var = 2 * (J[0] * J[0] + J[3] * J[3] + 2 * s01 * s01);  // 2 ‖S‖_F²
    const std::size_t draws = quick ? 4000 : 40000;
    fmt::print(
        "For ε with E[ε] = 0 and E[εεᵀ] = I, E[εᵀJε] = tr(J E[εεᵀ]) = tr J (Hutchinson 1989; FFJORD, eq. 7):\n"
        "one Jacobian-vector product Jε (one tangent) instead of D. Only the symmetric part S = (J + Jᵀ)/2 enters\n"
        "εᵀJε, and the variances are (docs/theory.md §12)\n\n"
        "    Rademacher (ε_j = ±1):  2 Σ_{{i≠j}} S_ij²        Gaussian (ε ~ N(0, I)):  2 ‖S‖_F²\n\n"
        "Rademacher never loses: the diagonal of S adds no noise. At one point, t = 0.5, J =\n"
        "[[{:.5f}, {:.5f}], [{:.5f}, {:.5f}]], tr J = {:.6f}; {} draws of each:\n\n",
        J[0], J[1], J[2], J[3], trace_of(J), draws);
    std::vector<std::vector<std::string>> rows;
    NoGrad no_grad;  // the traces are forward-mode: values only
    for (const auto kind : {flows::TraceEstimator::hutchinson_rademacher, flows::TraceEstimator::hutchinson_gaussian}) {
        Rng noise(seed + 17);
        // All draws in one batch: the same point repeated, one ε per row.
        const Tensor zs = broadcast_to(z, Shape{draws, 2});
        const Tensor est = flows::hutchinson_trace(field, Var(zs), 0.5, flows::hutchinson_noise(kind, draws, 2, noise)).value();
        double mean = 0, var = 0;
        for (const double e : est.span()) mean += e / static_cast<double>(draws);
        for (const double e : est.span()) var += (e - mean) * (e - mean) / static_cast<double>(draws - 1);
        const double theory = kind == flows::TraceEstimator::hutchinson_rademacher ? rademacher_var : gaussian_var;
        const double se = std::sqrt(theory / static_cast<double>(draws));
        rows.push_back({std::string(flows::to_string(kind)), fmt::format("{:.6f}", mean), fmt::format("{:.2e}", se),
                        fmt::format("{:.6f}", var), fmt::format("{:.6f}", theory)});
        const std::string name(flows::to_string(kind));
        verifier.check(name + ": mean within 4 standard errors of tr J", std::abs(mean - trace_of(J)) <= 4 * se,
                       fmt::format("|{:.6f} − {:.6f}| vs 4·SE {:.2e}", mean, trace_of(J), 4 * se));
        verifier.check_close(name + ": variance", {"measured", var}, {"formula", theory}, quick ? 0.15 : 0.05, 1e-12);
    }
    print_indented(plot::ascii_table({"estimator", "mean", "standard error", "variance measured", "variance formula"}, rows));
    const double exact = flows::exact_trace(field, Var(z), 0.5).item();
    fmt::print("\n    exact trace (D = 2 tangents, forward mode): {:.12f}    the autodiff Jacobian's diagonal: {:.12f}\n\n", exact,
               trace_of(J));
    verifier.check_close("tr J", {"exact_trace", exact}, {"tape J's diagonal", trace_of(J)}, 1e-12, 1e-14);
    fmt::print(
        "In 2-D the exact trace costs only two tangents, so the main experiments train with it; the estimator\n"
        "pays off when D is large (FFJORD's images), where it is one tangent instead of D.\n\n");
}
// ---- the exact trace, by forward or by reverse mode ----------------------------------------------

// tr(∂f/∂z) per sample by D backward passes recorded on the tape (grad with create_graph): row j of
// the Jacobian of every sample from one pass of Σ_n f_j(z_n), its j-th entry the diagonal element.
Var trace_by_reverse_mode(const Var& fz, const Var& z) {
    const std::size_t n = z.shape()[0], d = z.shape()[1];
    Var trace;
    for (std::size_t j = 0; j < d; ++j) {
        const Var row = grad(sum(narrow(fz, 1, j, 1)), {z}, GradOptions{.create_graph = true})[0];
        trace = j == 0 ? narrow(row, 1, 0, 1) : trace + narrow(row, 1, j, 1);
    }
    return reshape(trace, Shape{n});
}

void section_trace_modes(Verifier& verifier, std::uint64_t seed, bool quick) {
    verifier.section("The exact trace, by forward or by reverse mode");
    const std::size_t n = quick ? 64 : 256, repeats = quick ? 3 : 10;
    Rng rng(seed + 31);
    flows::TimeDependentField field(2, {64, 64}, rng);
    const Tensor z = randn(Shape{n, 2}, rng);
    fmt::print(
        "Training needs d/dθ of tr(∂f/∂z): a second derivative, which the engine can build two ways.\n"
        "The CNF carries D tangents e_j through f (forward mode) and backpropagates through them\n"
        "(reverse-over-forward). The alternative records D backward passes, grad(Σ_n f_j(z_n), z) with\n"
        "create_graph, and backpropagates through those (reverse-over-reverse, as FFJORD does in PyTorch).\n"
        "On the training field's shape (2 → 64 → 64 → 2, a batch of {}), the trace and its gradient with\n"
        "respect to all {} weights, each way ({} repeats, CPU time):\n\n",
        n, field.parameter_count(), repeats);
    Tensor value[2];
    std::vector<Tensor> grads[2];
    double seconds[2] = {0, 0};
    for (int way = 0; way < 2; ++way) {
        for (std::size_t r = 0; r < repeats; ++r) {
            Tape tape;
            TapeScope scope(tape);
            field.zero_grad();
            const double start = cpu_seconds();
            const Var zv = tape.variable(z);
            const Var trace = way == 0 ? flows::exact_trace(field, zv, 0.5) : trace_by_reverse_mode(field.forward(zv, 0.5), zv);
            tape.backward(mean(trace));
            seconds[way] += (cpu_seconds() - start) / static_cast<double>(repeats);
            value[way] = trace.value();
        }
        grads[way].clear();
        for (Parameter* p : field.parameters()) grads[way].push_back(p->grad.clone());
    }
    field.zero_grad();
    double worst_grad = 0;
    for (std::size_t k = 0; k < grads[0].size(); ++k) worst_grad = std::max(worst_grad, max_abs_diff(grads[0][k], grads[1][k]));
    print_indented(plot::ascii_table(
        {"way", "passes over f", "CPU ms (trace + θ-gradient)"},
        {{"forward mode: D tangents, then backward (reverse-over-forward)", "1 with 2 tangents", fmt::format("{:.2f}", 1e3 * seconds[0])},
         {"reverse mode: D recorded backward passes, then backward (reverse-over-reverse)", "1 + 2 backward", fmt::format("{:.2f}", 1e3 * seconds[1])}}));
    fmt::print("\n");
    verifier.check_error("trace: forward mode vs reverse mode with create_graph", max_abs_diff(value[0], value[1]), 1e-12);
    verifier.check_error("d mean(trace)/dθ: reverse-over-forward vs reverse-over-reverse", worst_grad, 1e-12);
}

// ---- 8. training --------------------------------------------------------------------------------

struct Settings {
    std::size_t steps, batch, solver_steps, hidden, test_points;
    double lr;
    bool hutchinson;  // also train a CNF with Hutchinson's estimator
};

struct Window {
    double box;  // the square (−box, box)² of flows::density_grid
};

Window window_of(const std::string& data) { return data == "moons" ? Window{2.5} : Window{4.5}; }

struct Fit {
    std::string model;
    std::size_t parameters = 0;
    double nll_before = 0, nll = 0, cpu_ms_per_step = 0, mass = 0;
    std::vector<double> density;  // on cell_centres(window, grid)
};

Fit fit(const std::string& model, flows::Flow& flow, const flows::Dataset& data, const Tensor& test, const Settings& s,
        std::uint64_t seed, const Window& w, std::size_t grid) {
    // Scored with the exact trace whatever the model trained with: the test NLL is then a number, not
    // an estimate.
    const tutorial::ComparisonFit c =
        tutorial::fit_for_comparison(flow, data, test, tutorial::comparison_training(s.steps, s.batch, s.lr, seed), [&] {
            if (auto* cnf = dynamic_cast<flows::CNF*>(&flow.layer(0))) cnf->set_trace(flows::TraceEstimator::exact);
        });
    Fit f{model, c.parameters, c.nll_before, c.nll, c.cpu_ms_per_step};
    const Tensor q = flows::density_grid(flow, w.box, grid);
    f.density.assign(q.data(), q.data() + q.numel());
    f.mass = flows::grid_mass(q, w.box);
    return f;
}

struct DataFits {
    std::string data;
    Tensor test;
    std::vector<Fit> fits;
    std::unique_ptr<flows::Flow> cnf;  // the exact-trace CNF, for the trajectory figure
};

std::vector<DataFits> section_training(Verifier& verifier, const Settings& s, std::uint64_t seed, std::size_t grid) {
    verifier.section("Training on two moons and 8 gaussians");
    fmt::print(
        "Maximum likelihood (docs/theory.md §2) on fresh batches of {} for {} Adam steps (rate {:g}, falling\n"
        "linearly over the last 20%): the CNF (field {}-{}-{}-2 with t at every layer, tanh, {} RK4 steps, the\n"
        "exact trace; its gradient is a second derivative through every stage) beside tutorial 07's RealNVP\n"
        "(8 couplings, conditioners 2-{}-{}-4) at the same steps and batch. Test NLL on {} fresh points, in\n"
        "nats; CPU milliseconds per training step measured in this run.\n\n",
        s.batch, s.steps, s.lr, s.hidden + 1, s.hidden, s.hidden, s.solver_steps, s.hidden, s.hidden, s.test_points);
    std::vector<DataFits> out;
    for (const std::string name : {"moons", "8gaussians"}) {
        const flows::Dataset& data = flows::dataset(name);
        Rng test_rng(seed + 2000);
        DataFits d{name, data.sample(s.test_points, test_rng), {}, nullptr};
        const Window w = window_of(name);
        const flows::CNFOptions cnf_options{.dim = 2, .hidden = {s.hidden, s.hidden}, .steps = s.solver_steps, .seed = seed};
        d.cnf = flows::make_cnf(cnf_options);
        d.fits.push_back(fit("CNF, exact trace", *d.cnf, data, d.test, s, seed + 1, w, grid));
        if (s.hutchinson) {
            flows::CNFOptions h = cnf_options;
            h.trace = flows::TraceEstimator::hutchinson_rademacher;
            auto flow = flows::make_cnf(h);
            d.fits.push_back(fit("CNF, Hutchinson (Rademacher)", *flow, data, d.test, s, seed + 1, w, grid));
        }
        auto realnvp = flows::make_realnvp({.dim = 2, .hidden = {s.hidden, s.hidden}, .seed = seed});
        d.fits.push_back(fit("RealNVP (tutorial 07)", *realnvp, data, d.test, s, seed + 1, w, grid));
        out.push_back(std::move(d));
    }
    std::vector<std::vector<std::string>> rows;
    for (const DataFits& d : out)
        for (const Fit& f : d.fits) {
            const auto entropy = flows::dataset_entropy(d.data);
            rows.push_back({d.data, f.model, fmt::format("{}", f.parameters), fmt::format("{:.4f}", f.nll),
                            entropy ? fmt::format("{:.4f}", *entropy) : "", fmt::format("{:.2f}", f.cpu_ms_per_step),
                            fmt::format("{:.4f}", f.mass)});
        }
    print_indented(plot::ascii_table({"data", "model", "parameters", "test NLL", "entropy", "CPU ms / step", "∫ q on the window"}, rows));
    fmt::print("\n");
    for (const DataFits& d : out) {
        const double entropy = *flows::dataset_entropy(d.data);
        for (const Fit& f : d.fits) {
            verifier.check(fmt::format("{}, {}: test NLL finite and not below the entropy", d.data, f.model),
                           std::isfinite(f.nll) && f.nll > entropy - 0.05, fmt::format("{:.4f} vs H = {:.4f}", f.nll, entropy));
        }
        for (const Fit& f : d.fits)
            verifier.check(fmt::format("{}, {}: training lowered the test NLL", d.data, f.model), f.nll < f.nll_before,
                           fmt::format("{:.4f} → {:.4f}", f.nll_before, f.nll));
    }
    return out;
}
// ---- 9. figures ---------------------------------------------------------------------------------

std::vector<double> coordinate(const Tensor& x, std::size_t j) {
    std::vector<double> c(x.shape()[0]);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = x[2 * i + j];
    return c;
}

// `lines` vertical then `lines` horizontal polylines of `points` points each over [−a, a]², one batch.
Tensor latent_grid(double a, std::size_t lines, std::size_t points) {
    Tensor g(Shape{2 * lines * points, 2});
    for (std::size_t k = 0; k < lines; ++k)
        for (std::size_t p = 0; p < points; ++p) {
            const double fixed = -a + 2 * a * static_cast<double>(k) / static_cast<double>(lines - 1);
            const double along = -a + 2 * a * static_cast<double>(p) / static_cast<double>(points - 1);
            const std::size_t v = k * points + p, h = (lines + k) * points + p;
            g[2 * v] = fixed, g[2 * v + 1] = along;
            g[2 * h] = along, g[2 * h + 1] = fixed;
        }
    return g;
}

std::vector<std::string> draw_cnf_figures(const std::vector<DataFits>& fits, const Settings& s, std::size_t grid,
                                      const std::filesystem::path& out, std::uint64_t seed) {
    const std::string densities = (out / "densities.svg").string(), trajectories = (out / "trajectories.svg").string();
    const int models = static_cast<int>(fits.front().fits.size());
    {
        plot::Figure fig(static_cast<int>(fits.size()), models + 1, 330, 300);
        fig.title("Test data and the learned densities q(x)");
        for (std::size_t r = 0; r < fits.size(); ++r) {
            const DataFits& d = fits[r];
            const Window w = window_of(d.data);
            double top = 0;
            for (const Fit& f : d.fits) top = std::max(top, *std::max_element(f.density.begin(), f.density.end()));
            const Tensor shown = narrow(d.test, 0, 0, std::min<std::size_t>(3000, d.test.shape()[0])).clone();
            fig.axes(static_cast<int>(r), 0)
                .scatter(coordinate(shown, 0), coordinate(shown, 1), {.colour = "#1f77b4", .radius = 1.0, .opacity = 0.4})
                .set_title(fmt::format("{}: test data", d.data))
                .set_xlim(-w.box, w.box)
                .set_ylim(-w.box, w.box)
                .equal_aspect();
            for (int m = 0; m < models; ++m) {
                const Fit& f = d.fits[static_cast<std::size_t>(m)];
                fig.axes(static_cast<int>(r), m + 1)
                    .heatmap(f.density, static_cast<int>(grid), static_cast<int>(grid), -w.box, w.box, -w.box, w.box,
                             {.colorbar_label = "q(x)", .value_min = 0.0, .value_max = top})
                    .set_title(fmt::format("{} (NLL {:.3f})", f.model, f.nll))
                    .equal_aspect();
            }
        }
        fig.save(densities);
    }
    {
        // The continuous version of tutorial 07's grid figure: a grid and samples of the base carried by
        // the learned field to t = ¼, ½, ¾, 1, then the paths themselves.
        static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"};
        const std::size_t lines = 11, points = 60, per_quarter = s.solver_steps;
        const std::size_t n_samples = 800, n_paths = 120;
        plot::Figure fig(static_cast<int>(fits.size()), 6, 250, 250);
        fig.title("The flow from base (t = 0) to data (t = 1): a grid and samples of N(0, I) carried by dz/dt = f(z, t)");
        for (std::size_t r = 0; r < fits.size(); ++r) {
            const DataFits& d = fits[r];
            auto& cnf = dynamic_cast<flows::CNF&>(d.cnf->layer(0));
            const std::size_t saved = cnf.steps();
            cnf.set_steps(4 * per_quarter);  // a finer solve than training's, for smooth paths
            Rng rng(seed + 4000);
            const Tensor z = randn(Shape{n_samples, 2}, rng);
            const std::vector<Tensor> path = cnf.trajectory(z, 0.0, 1.0);
            const std::vector<Tensor> grid_path = cnf.trajectory(latent_grid(3.0, lines, points), 0.0, 1.0);
            cnf.set_steps(saved);
            const Window w = window_of(d.data);
            const double hi = std::max(w.box, 3.5), lo = -hi;
            for (int q = 0; q <= 4; ++q) {
                const std::size_t k = static_cast<std::size_t>(q) * per_quarter;
                plot::Axes& ax = fig.axes(static_cast<int>(r), q);
                ax.set_title(fmt::format("{}: t = {:g}", d.data, q / 4.0)).set_xlim(lo, hi).set_ylim(lo, hi).equal_aspect();
                for (std::size_t l = 0; l < 2 * lines; ++l) {
                    std::vector<double> xs(points), ys(points);
                    for (std::size_t p = 0; p < points; ++p)
                        xs[p] = grid_path[k][2 * (l * points + p)], ys[p] = grid_path[k][2 * (l * points + p) + 1];
                    ax.line(xs, ys, {.colour = "#9e9e9e", .width = 0.6, .opacity = 0.8});
                }
                for (int quadrant = 0; quadrant < 4; ++quadrant) {
                    std::vector<double> xs, ys;
                    for (std::size_t i = 0; i < n_samples; ++i)
                        if ((z[2 * i] >= 0 ? 1 : 0) + (z[2 * i + 1] >= 0 ? 2 : 0) == quadrant)
                            xs.push_back(path[k][2 * i]), ys.push_back(path[k][2 * i + 1]);
                    ax.scatter(xs, ys, {.colour = colours[quadrant], .radius = 1.1, .opacity = 0.6});
                }
            }
            plot::Axes& ax = fig.axes(static_cast<int>(r), 5);
            ax.set_title(fmt::format("{}: paths z(t), t from 0 to 1", d.data)).set_xlim(lo, hi).set_ylim(lo, hi).equal_aspect();
            for (std::size_t i = 0; i < n_paths; ++i) {
                std::vector<double> xs, ys;
                for (const Tensor& p : path) xs.push_back(p[2 * i]), ys.push_back(p[2 * i + 1]);
                const int quadrant = (z[2 * i] >= 0 ? 1 : 0) + (z[2 * i + 1] >= 0 ? 2 : 0);
                ax.line(xs, ys, {.colour = colours[quadrant], .width = 0.7, .opacity = 0.7});
                ax.scatter(std::vector<double>{xs.back()}, std::vector<double>{ys.back()},
                           {.colour = "#000000", .radius = 1.2, .opacity = 0.8});
            }
        }
        fig.save(trajectories);
    }
    return {densities, trajectories};
}
int run(const tutorial::Options& opt) {
    Settings s{};
    s.steps = static_cast<std::size_t>(opt.integer("--steps"));
    s.batch = static_cast<std::size_t>(opt.integer("--batch"));
    s.solver_steps = static_cast<std::size_t>(opt.integer("--solver-steps"));
    s.hidden = static_cast<std::size_t>(opt.integer("--hidden"));
    s.test_points = opt.quick ? 1000 : 10000;
    s.lr = opt.real("--lr");
    s.hutchinson = opt.boolean("--hutchinson");
    Verifier verifier;

    section_modes(verifier, opt.seed, opt.quick);
    section_hessian(verifier);
    section_newton(verifier);

    flows::CNF cnf({.dim = 2, .hidden = {16, 16}, .seed = opt.seed});
    section_instantaneous(verifier, cnf, Tensor{{0.4, -0.9}});
    section_rk4(verifier, opt.seed);
    section_density(verifier, opt.seed);
    section_trace_modes(verifier, opt.seed, opt.quick);
    section_hutchinson(verifier, opt.seed, opt.quick);

    const std::size_t grid = opt.quick ? 40 : 120;
    const std::vector<DataFits> fits = section_training(verifier, s, opt.seed, grid);

    verifier.section("Figures");
    const std::vector<std::string> paths = draw_cnf_figures(fits, s, grid, opt.out_dir, opt.seed);
    fmt::print("Figures (SVG):\n    {}   (the learned densities)\n    {}   (base → data, t = 0 … 1)\n\n", paths[0], paths[1]);
    for (const std::string& p : paths)
        verifier.check(fmt::format("wrote {}", std::filesystem::path(p).filename().string()), std::filesystem::exists(p));

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("12_higher_order_and_continuous_flows",
                                "a Hessian by reverse-over-reverse and a Newton step, the instantaneous change of "
                                "variables, RK4 on the tape, the trace by forward or reverse mode, exact trace vs "
                                "Hutchinson, a CNF against RealNVP");
    cli.integer("--steps", {"1000", "40"}, {1, 10'000'000}, "training steps of every fit")
        .integer("--batch", {"256", "32"}, {1, 100'000}, "samples per training step")
        .real("--lr", "2e-3", {0, 1, true}, "Adam's learning rate (falls linearly over the last 20% of the steps)")
        .integer("--solver-steps", {"8", "4"}, {1, 10'000}, "RK4 steps of the CNF over [0, 1]")
        .integer("--hidden", {"64", "16"}, {1, 4096}, "width of the hidden layers (CNF field and RealNVP conditioners)")
        .boolean("--hutchinson", {"true", "false"}, "also train a CNF with Hutchinson's estimator");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
