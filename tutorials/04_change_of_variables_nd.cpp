// 04_change_of_variables_nd: Jacobians and log-determinants in 2-D, log-dets adding along a chain, a pushforward density that integrates to 1, grid lines that bend but never cross
//
// The change of variables in D dimensions (docs/theory.md §1): p_x(x) = p_z(z)·|det J_f(z)|⁻¹ at z = f⁻¹(x).
// We compute the Jacobian of one planar layer three ways (the formula, the tape, finite
// differences) and its determinant four ways; compose a planar, a radial and an affine layer and
// see their log-dets add; integrate the pushforward density over the plane; and draw the picture
// of the RealNVP paper: a grid in z mapped to x and a grid in x mapped back, lines bent but never
// crossed, which we verify by counting intersections. A map that breaks the planar layer's
// invertibility constraint folds the plane, and the same counts catch it.
//
//   ./tapeflow tutorial 04 [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "autograd/var.hpp"
#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "flows/flow.hpp"
#include "flows/planar.hpp"
#include "flows/radial.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/stable.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/grid_lines.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

constexpr double inf = std::numeric_limits<double>::infinity();

using tutorial::print_indented;

std::string num(double v) { return fmt::format("{:.12f}", v); }
std::string matrix_2x2_text(const Tensor& m) {
    return fmt::format("[{:15.12f} {:15.12f}]\n[{:15.12f} {:15.12f}]", m.at({0, 0}), m.at({0, 1}), m.at({1, 0}), m.at({1, 1}));
}

using stable::inverse_softplus;  // ln(eʸ − 1)

using Map = std::function<Var(const Var&)>;  // a batch [N, 2] → [N, 2]

// J[i, j] = ∂f_i/∂z_j at one point z [1, D] by central differences, column by column.
Tensor finite_difference_jacobian(const Map& f, const Tensor& z, double eps) {
    NoGrad no_grad;
    const std::size_t d = z.numel();
    Tensor jac(Shape{d, d});
    for (std::size_t j = 0; j < d; ++j) {
        Tensor plus = z.clone(), minus = z.clone();
        plus[j] += eps;
        minus[j] -= eps;
        const Tensor fp = f(Var(plus)).value(), fm = f(Var(minus)).value();
        for (std::size_t i = 0; i < d; ++i) jac.at({i, j}) = (fp[i] - fm[i]) / (2 * eps);
    }
    return jac;
}

// The 2×2 Jacobians of f at every row of z [N, 2], returned as [N, 2, 2], in two backward passes:
// the rows do not interact, so the gradient of Σ_n f(z_n)_i with respect to z is row i of every
// point's Jacobian at once.
Tensor batch_jacobian(const Map& f, const Tensor& z) {
    const std::size_t n = z.shape()[0];
    Tensor jac(Shape{n, 2, 2});
    Tape& tape = Tape::current();
    for (std::size_t i = 0; i < 2; ++i) {
        tape.clear();
        const Var zv = tape.variable(z);
        tape.backward(sum(narrow(f(zv), 1, i, 1)));
        const Tensor row = zv.grad();
        for (std::size_t k = 0; k < n; ++k)
            for (std::size_t j = 0; j < 2; ++j) jac.at({k, i, j}) = row.at({k, j});
    }
    tape.clear();
    return jac;
}

// ---- Grid lines and their intersections ------------------------------------------------------

using tutorial::draw_grid;
using tutorial::grid_topology;
using tutorial::GridTopology;
using tutorial::Polyline;

// The lines of a square grid on [−r, r]² (tutorials/common/grid_lines.hpp).
std::vector<Polyline> square_grid(double r, int lines, int per_cell) { return tutorial::grid_polylines(-r, r, -r, r, lines, per_cell); }

// Every polyline pushed through `f` (one batch, nothing recorded).
std::vector<Polyline> map_lines(const std::vector<Polyline>& lines, const Map& f) {
    return tutorial::map_lines(lines, [&](const Tensor& t) {
        NoGrad no_grad;
        return f(Var(t)).value();
    });
}

// ==============================================================================================

int run(const tutorial::Options& opt) {
    Verifier verifier;
    const std::filesystem::path out_dir(opt.out_dir);
    Rng rng(opt.seed);

    // The three layers of the flow x = f₃(f₂(f₁(z))), with fixed parameters. Their constructors draw
    // a random initialization, which we overwrite.
    Rng init_rng(0);
    auto planar_owner = std::make_unique<flows::Planar>(2, init_rng);
    auto radial_owner = std::make_unique<flows::Radial>(2, init_rng);
    auto affine_owner = std::make_unique<flows::Affine>(Tensor{0.3, -0.2}, Tensor{std::log(1.3), std::log(0.9)});
    flows::Planar& planar = *planar_owner;
    flows::Radial& radial = *radial_owner;
    flows::Affine& affine = *affine_owner;

    // Planar (docs/theory.md §3): we want û = (−0.4, 1.6) and w = (1.5, 0.6), b = 0.3. The layer stores a
    // free u with û = u + (softplus(−a) − 1)·w/‖w‖², a = wᵀu, and wᵀû = softplus(a) − 1; inverting that,
    // a = softplus⁻¹(1 + wᵀû) and u = û − (softplus(−a) − 1)·w/‖w‖².
    {
        const double w[2] = {1.5, 0.6}, want[2] = {-0.4, 1.6};
        const double wu_hat = w[0] * want[0] + w[1] * want[1], w_norm2 = w[0] * w[0] + w[1] * w[1];
        const double a = inverse_softplus(1 + wu_hat);
        const double shift = (stable::softplus(-a) - 1) / w_norm2;
        planar.w().value = Tensor{w[0], w[1]};
        planar.u().value = Tensor{want[0] - shift * w[0], want[1] - shift * w[1]};
        planar.b().value = Tensor{0.3};
    }
    // Radial (docs/theory.md §4): centre z₀ = (−0.5, 0.5), α = 0.5, β̂ = 1 (β̂ > 0 pushes points away from z₀);
    // stored as α′ = softplus⁻¹(α), β′ = softplus⁻¹(α + β̂).
    radial.z0().value = Tensor{-0.5, 0.5};
    radial.alpha_prime().value = Tensor{inverse_softplus(0.5)};
    radial.beta_prime().value = Tensor{inverse_softplus(0.5 + 1.0)};

    const Map f1 = [&](const Var& z) { return planar.forward(z).value; };
    const Map f2 = [&](const Var& z) { return radial.forward(z).value; };
    const Map f3 = [&](const Var& z) { return affine.forward(z).value; };

    // ------------------------------------------------------------------------------------------
    verifier.section("The Jacobian of one layer, three ways");
    const Tensor u_hat = planar.u_hat();
    const Tensor w = planar.w().value;
    const double b = planar.b().value[0];
    const Tensor z_star{{0.4, -0.7}};
    const double pre = w[0] * z_star[0] + w[1] * z_star[1] + b;  // wᵀz + b
    const double sech2 = 1 - std::tanh(pre) * std::tanh(pre);
    const double psi[2] = {sech2 * w[0], sech2 * w[1]};  // ψ = tanh'(wᵀz + b)·w
    Tensor jac_formula(Shape{2, 2});
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 2; ++j) jac_formula.at({i, j}) = (i == j ? 1.0 : 0.0) + u_hat[i] * psi[j];
    const Tensor jac_tape = jacobian(f1, z_star);
    const Tensor jac_fd = finite_difference_jacobian(f1, z_star, 1e-6);
    fmt::print(
        "The planar layer f₁(z) = z + û·tanh(wᵀz + b) (docs/theory.md §3) with w = ({}, {}), b = {},\n"
        "û = ({:.6g}, {:.6g}), at z = ({}, {}). Differentiating each component, ∂f_i/∂z_j = δ_ij +\n"
        "û_i·tanh'(wᵀz + b)·w_j, so J = I + û ψᵀ with ψ = sech²(wᵀz + b)·w: a rank-one update of I.\n\n"
        "J by the formula:\n",
        w[0], w[1], b, u_hat[0], u_hat[1], z_star[0], z_star[1]);
    print_indented(matrix_2x2_text(jac_formula));
    fmt::print("J by the tape (jacobian(): one backward pass per output):\n");
    print_indented(matrix_2x2_text(jac_tape));
    fmt::print("J by central differences (ε = 1e-6, one column per input):\n");
    print_indented(matrix_2x2_text(jac_fd));
    fmt::print("\n");
    verifier.check_error("J: max |tape − formula|", max_abs_diff(jac_tape, jac_formula), 1e-14);
    verifier.check_error("J: max |central diff. − formula|", max_abs_diff(jac_fd, jac_formula), 1e-8);
    // The inverse's Jacobian is the inverse matrix: J_{f⁻¹}(x) · J_f(z) = I at x = f(z).
    const Tensor x_star = f1(Var(z_star)).value();
    const Map f1_inverse = [&](const Var& x) { return planar.inverse(x).value; };
    const Tensor jac_inverse = jacobian(f1_inverse, x_star);
    const Tensor should_be_identity = matmul(jac_inverse, jac_tape);
    fmt::print(
        "The inverse has no closed form (a scalar Newton solve), yet the tape differentiates it\n"
        "exactly through the implicit function theorem; its Jacobian at x = f₁(z) is J⁻¹:\n"
        "J_{{f⁻¹}}(x) · J_f(z) =\n");
    print_indented(matrix_2x2_text(should_be_identity));
    fmt::print("\n");
    verifier.check_error("max |J_{f⁻¹}(f(z)) · J_f(z) − I|",
                         max_abs_diff(should_be_identity, Tensor{{1.0, 0.0}, {0.0, 1.0}}), 1e-14);

    // ------------------------------------------------------------------------------------------
    verifier.section("Its determinant, four ways");
    const double det_lu = det(jac_tape);
    const SignLogDet sld = slogdet(jac_tape);
    const double det_by_hand = jac_tape.at({0, 0}) * jac_tape.at({1, 1}) - jac_tape.at({0, 1}) * jac_tape.at({1, 0});
    const double det_lemma = 1 + u_hat[0] * psi[0] + u_hat[1] * psi[1];  // det(I + ûψᵀ) = 1 + ψᵀû
    const double layer_log_det = planar.forward(Var(z_star)).log_abs_det_jacobian.item();
    fmt::print(
        "The matrix determinant lemma gives det(I + ûψᵀ) = 1 + ψᵀû, so log|det J| costs O(D), not the\n"
        "O(D³) of a factorization. The constraint wᵀû > −1 keeps 1 + sech²·wᵀû > 0 for every z.\n\n");
    print_indented(plot::ascii_table(
        {"method", "det J", "log|det J|"},
        {{"a·d − b·c of the tape's J", num(det_by_hand), num(std::log(std::abs(det_by_hand)))},
         {"det(J) by LU (tensor/linalg.hpp)", num(det_lu), num(std::log(std::abs(det_lu)))},
         {"slogdet(J): sign, log|det|", fmt::format("sign {:+.0f}", sld.sign), num(sld.log_abs_det)},
         {"lemma 1 + ψᵀû", num(det_lemma), num(std::log(det_lemma))},
         {"Planar::forward log_abs_det_jacobian", "", num(layer_log_det)}}));
    fmt::print("\n");
    verifier.check_close("det J", {"LU", det_lu}, {"a·d − b·c", det_by_hand}, 1e-14, 0);
    verifier.check_close("det J", {"lemma 1 + ψᵀû", det_lemma}, {"LU", det_lu}, 1e-14, 0);
    verifier.check("slogdet: sign +1 (orientation kept)", sld.sign == 1.0);
    verifier.check_close("log|det J|", {"Planar layer", layer_log_det}, {"slogdet(tape J)", sld.log_abs_det}, 0, 1e-14);
    const double inverse_log_det = planar.inverse(Var(x_star)).log_abs_det_jacobian.item();
    verifier.check_close("inverse's log|det| at x = f(z)", {"inverse", inverse_log_det}, {"−forward's", -layer_log_det},
                         0, 1e-14);

    // ------------------------------------------------------------------------------------------
    verifier.section("Log-dets add along a composition");
    std::vector<std::unique_ptr<flows::Bijector>> layers;
    layers.push_back(std::move(planar_owner));
    layers.push_back(std::move(radial_owner));
    layers.push_back(std::move(affine_owner));
    flows::Flow flow(std::make_unique<flows::StandardNormal>(2), std::move(layers));
    const Map f = [&](const Var& z) { return flow.forward(z).value; };
    const Map f_inverse = [&](const Var& x) { return flow.inverse(x).value; };
    const Tensor z_chain{{0.4, -0.7}};
    const Tensor z1 = f1(Var(z_chain)).value(), z2 = f2(Var(z1)).value(), x_chain = f3(Var(z2)).value();
    const Tensor jac1 = jacobian(f1, z_chain), jac2 = jacobian(f2, z1), jac3 = jacobian(f3, z2);
    const Tensor product = matmul(jac3, matmul(jac2, jac1));
    const Tensor jac_whole = jacobian(f, z_chain);
    const double ld1 = planar.forward(Var(z_chain)).log_abs_det_jacobian.item();
    const double ld2 = radial.forward(Var(z1)).log_abs_det_jacobian.item();
    const double ld3 = affine.forward(Var(z2)).log_abs_det_jacobian.item();
    const double flow_log_det = flow.forward(Var(z_chain)).log_abs_det_jacobian.item();
    fmt::print(
        "x = f₃(f₂(f₁(z))): f₁ the planar layer above, f₂ a radial layer (centre z₀ = (−0.5, 0.5), α = 0.5,\n"
        "β̂ = {:.4g}: it pushes the plane away from z₀), f₃ an affine map x = μ + σ⊙z with σ = (1.3, 0.9).\n"
        "The chain rule makes the Jacobian a product, J_f = J₃·J₂·J₁ (each at its own layer's input),\n"
        "and det(AB) = det A·det B turns the product into a sum of log-dets (RealNVP eqs. 10-12):\n"
        "    log|det J_f(z)| = log|det J₁(z)| + log|det J₂(z₁)| + log|det J₃(z₂)|\n\n",
        radial.beta_hat());
    print_indented(plot::ascii_table(
        {"layer", "its input", "log|det J_k| (bijector)", "slogdet(J_k) (tape)"},
        {{"f₁ planar", fmt::format("({:.4f}, {:.4f})", z_chain[0], z_chain[1]), num(ld1), num(slogdet(jac1).log_abs_det)},
         {"f₂ radial", fmt::format("({:.4f}, {:.4f})", z1[0], z1[1]), num(ld2), num(slogdet(jac2).log_abs_det)},
         {"f₃ affine", fmt::format("({:.4f}, {:.4f})", z2[0], z2[1]), num(ld3), num(slogdet(jac3).log_abs_det)},
         {"sum", "", num(ld1 + ld2 + ld3), ""},
         {"log|det(J₃·J₂·J₁)|", "", "", num(slogdet(product).log_abs_det)},
         {"log|det J_f| (tape, whole chain)", "", "", num(slogdet(jac_whole).log_abs_det)},
         {"Flow::forward log_abs_det_jacobian", "", num(flow_log_det), ""}}));
    fmt::print("\n");
    verifier.check_close("log|det| of the chain", {"Σ layers'", ld1 + ld2 + ld3},
                         {"slogdet(J₃J₂J₁)", slogdet(product).log_abs_det}, 0, 1e-13);
    verifier.check_close("log|det| of the chain", {"Σ layers'", ld1 + ld2 + ld3},
                         {"slogdet(tape J_f)", slogdet(jac_whole).log_abs_det}, 0, 1e-13);
    verifier.check_error("max |J₃J₂J₁ − tape J_f|", max_abs_diff(product, jac_whole), 1e-14);
    verifier.check_close("log|det| of the chain", {"Flow::forward", flow_log_det}, {"Σ layers'", ld1 + ld2 + ld3}, 0,
                         1e-14);
    {
        // The same on many random points, and the inverse pass: layers undone in reverse order,
        // log-dets of the inverses summing to minus the forward one.
        const std::size_t n = 200;
        const Tensor zs = randn(Shape{n, 2}, rng, 0.0, 1.5);
        const Tensor jacs = batch_jacobian(f, zs);
        NoGrad no_grad;
        const flows::Transformed fwd = flow.forward(Var(zs));
        const flows::Transformed back = flow.inverse(fwd.value);
        double worst_log_det = 0, worst_inverse = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const double d = jacs.at({k, 0, 0}) * jacs.at({k, 1, 1}) - jacs.at({k, 0, 1}) * jacs.at({k, 1, 0});
            worst_log_det = std::max(worst_log_det, std::abs(std::log(std::abs(d)) - fwd.log_abs_det_jacobian.value()[k]));
            worst_inverse = std::max(worst_inverse,
                                     std::abs(back.log_abs_det_jacobian.value()[k] + fwd.log_abs_det_jacobian.value()[k]));
        }
        fmt::print("\nOn {} random points z ~ N(0, 1.5²I):\n", n);
        verifier.check_error("max |flow log-det − log|det tape J||", worst_log_det, 1e-12);
        verifier.check_error("max |inverse's log-det + forward's|", worst_inverse, 1e-12);
        verifier.check_error("max |f⁻¹(f(z)) − z|", max_abs_diff(back.value.value(), zs), 1e-12);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The pushforward density integrates to 1");
    const double box = 10;
    const std::size_t nodes = opt.quick ? 241 : 481;
    const double spacing = 2 * box / static_cast<double>(nodes - 1);
    std::vector<double> grid_points;
    for (std::size_t i = 0; i < nodes; ++i)
        for (std::size_t j = 0; j < nodes; ++j) {
            grid_points.push_back(-box + static_cast<double>(j) * spacing);  // x₁ runs along a row
            grid_points.push_back(-box + static_cast<double>(i) * spacing);
        }
    const Tensor grid(Shape{nodes * nodes, 2}, grid_points);
    std::vector<double> density_x(nodes * nodes), density_z(nodes * nodes), wrong_sign(nodes * nodes);
    {
        NoGrad no_grad;
        flows::StandardNormal base(2);
        const flows::Transformed back = flow.inverse(Var(grid));
        const Tensor log_pz_at_preimage = base.log_prob(back.value).value();
        const Tensor log_pz = base.log_prob(Var(grid)).value();
        const Tensor log_px = flow.log_prob(Var(grid)).value();
        for (std::size_t k = 0; k < nodes * nodes; ++k) {
            density_x[k] = std::exp(log_px[k]);
            density_z[k] = std::exp(log_pz[k]);
            // The classic sign error: multiplying by |det J_{f⁻¹}|⁻¹ instead of |det J_{f⁻¹}|.
            wrong_sign[k] = std::exp(log_pz_at_preimage[k] - back.log_abs_det_jacobian.value()[k]);
        }
    }
    // The trapezoid rule: weight ½ on the box's edges (¼ at its corners).
    auto integrate = [&](const std::vector<double>& values) {
        double total = 0;
        for (std::size_t i = 0; i < nodes; ++i)
            for (std::size_t j = 0; j < nodes; ++j) {
                const double wi = (i == 0 || i == nodes - 1) ? 0.5 : 1.0, wj = (j == 0 || j == nodes - 1) ? 0.5 : 1.0;
                total += wi * wj * values[i * nodes + j];
            }
        return total * spacing * spacing;
    };
    const double mass_x = integrate(density_x), mass_z = integrate(density_z), mass_wrong = integrate(wrong_sign);
    fmt::print(
        "p_x(x) = p_z(f⁻¹(x))·|det J_{{f⁻¹}}(x)| = exp(Flow::log_prob(x)), on a {}×{} grid over [−{}, {}]²,\n"
        "integrated by the trapezoid rule:\n\n",
        nodes, nodes, box, box);
    print_indented(plot::ascii_table(
        {"density", "∫∫ over the box"},
        {{"p_z = N(0, I)", num(mass_z)},
         {"p_x = p_z(f⁻¹(x))·|det J_{f⁻¹}(x)|", num(mass_x)},
         {"p_z(f⁻¹(x)) / |det J_{f⁻¹}(x)|  (sign error)", num(mass_wrong)}}));
    fmt::print("\n");
    verifier.check_close("∫ p_z (the rule's own error)", {"trapezoid", mass_z}, {"exact", 1.0}, 0, 1e-9);
    verifier.check_close("∫ p_x", {"trapezoid", mass_x}, {"exact", 1.0}, 0, opt.quick ? 5e-6 : 5e-7);
    verifier.check("the sign error does not integrate to 1", std::abs(mass_wrong - 1) > 0.05,
                   fmt::format("∫ = {:.4f}", mass_wrong));
    // Samples and density must describe the same distribution (TFP's sample/log_prob consistency):
    // moments from samples x = f(z) against the same moments by quadrature of p_x.
    {
        const std::size_t n = opt.quick ? 100'000 : 1'000'000;
        const Tensor xs = flow.sample(n, rng);
        double quad[3] = {0, 0, 0};
        std::vector<double> weighted(nodes * nodes);
        for (int m = 0; m < 3; ++m) {
            for (std::size_t k = 0; k < nodes * nodes; ++k) {
                const double x1 = grid_points[2 * k], x2 = grid_points[2 * k + 1];
                weighted[k] = density_x[k] * (m == 0 ? x1 : m == 1 ? x2 : x1 * x1 + x2 * x2);
            }
            quad[m] = integrate(weighted);
        }
        const char* names[3] = {"E[x₁]", "E[x₂]", "E[‖x‖²]"};
        fmt::print("Moments of {} samples x = f(z), z ~ N(0, I), against quadrature of p_x:\n\n",
                   opt.quick ? "100,000" : "1,000,000");
        for (int m = 0; m < 3; ++m) {
            double s = 0, s2 = 0;
            for (std::size_t k = 0; k < n; ++k) {
                const double x1 = xs.at({k, 0}), x2 = xs.at({k, 1});
                const double v = m == 0 ? x1 : m == 1 ? x2 : x1 * x1 + x2 * x2;
                s += v;
                s2 += v * v;
            }
            const double nd = static_cast<double>(n), mean = s / nd;
            const double se = std::sqrt((s2 / nd - mean * mean) / (nd - 1));
            verifier.check_close(fmt::format("{} (±4 s.e. = {:.1e})", names[m], 4 * se), {"quadrature of p_x", quad[m]},
                                 {"samples", mean}, 0, 4 * se);
        }
    }
    {
        // Zoom on [−5, 5]²: the mass beyond is invisible at this scale.
        const double shown = 5.0;
        std::size_t first = 0, count = 0;
        for (std::size_t i = 0; i < nodes; ++i) {
            const double c = -box + static_cast<double>(i) * spacing;
            if (c < -shown - 1e-9 || c > shown + 1e-9) continue;
            if (count == 0) first = i;
            ++count;
        }
        std::vector<double> crop_z, crop_x;
        for (std::size_t i = first; i < first + count; ++i)
            for (std::size_t j = first; j < first + count; ++j) {
                crop_z.push_back(density_z[i * nodes + j]);
                crop_x.push_back(density_x[i * nodes + j]);
            }
        const double lo = -box + static_cast<double>(first) * spacing, hi = lo + static_cast<double>(count - 1) * spacing;
        const int side = static_cast<int>(count);

        fmt::print("\np_z (left) and p_x (right) on [−{0}, {0}]², each shaded from its own 0 to its own maximum:\n\n",
                   shown);
        std::istringstream left(plot::ascii_heatmap(crop_z, side, side, 36, 18));
        std::istringstream right(plot::ascii_heatmap(crop_x, side, side, 36, 18));
        for (std::string a, c; std::getline(left, a) && std::getline(right, c);) fmt::print("    {}   {}\n", a, c);

        plot::Figure fig(1, 2, 430, 400);
        fig.axes(0, 0)
            .heatmap(crop_z, side, side, lo, hi, lo, hi, {.colorbar_label = "p_z(z)", .value_min = 0.0})
            .set_title("before: p_z = N(0, I)")
            .set_xlabel("z₁")
            .set_ylabel("z₂")
            .equal_aspect();
        fig.axes(0, 1)
            .heatmap(crop_x, side, side, lo, hi, lo, hi, {.colorbar_label = "p_x(x)", .value_min = 0.0})
            .set_title("after: p_x = p_z(f⁻¹(x))·|det J_f⁻¹|")
            .set_xlabel("x₁")
            .set_ylabel("x₂")
            .equal_aspect();
        const std::string path = (out_dir / "densities.svg").string();
        fig.save(path);
        fmt::print("\nFigure: {}\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Grid lines bend but never cross");
    const int lines = opt.quick ? 13 : 25, per_cell = opt.quick ? 5 : 7;
    const double reach = 3.0;
    const std::vector<Polyline> z_grid = square_grid(reach, lines, per_cell);
    const std::vector<Polyline> z_grid_in_x = map_lines(z_grid, f);
    const std::vector<Polyline> x_grid = square_grid(reach + 1, lines, per_cell);
    const std::vector<Polyline> x_grid_in_z = map_lines(x_grid, f_inverse);
    fmt::print(
        "A bijection that is smooth both ways (a diffeomorphism) keeps the topology of the plane:\n"
        "the image of a grid can bend, but two lines never cross or tear apart. The RealNVP paper's\n"
        "Figure 1 shows it both ways; here {0} + {0} grid lines on [−{1}, {1}]² in z are pushed to x by f\n"
        "(generation), and as many on [−{2}, {2}]² in x are pulled back to z by f⁻¹ (inference). Counting\n"
        "proper crossings between the image polylines ({3} segments each):\n\n",
        lines, reach, reach + 1, lines * per_cell);
    const GridTopology forward_topology = grid_topology(z_grid_in_x);
    const GridTopology inverse_topology = grid_topology(x_grid_in_z);
    tutorial::check_grid_topology(verifier, forward_topology, inverse_topology);

    // Locally, "no crossing" is "det J never changes sign": a fold is where it passes through 0.
    const std::size_t fine = opt.quick ? 81 : 201;
    std::vector<double> fine_points;
    for (std::size_t i = 0; i < fine; ++i)
        for (std::size_t j = 0; j < fine; ++j) {
            fine_points.push_back(-4 + 8.0 * static_cast<double>(j) / static_cast<double>(fine - 1));
            fine_points.push_back(-4 + 8.0 * static_cast<double>(i) / static_cast<double>(fine - 1));
        }
    const Tensor fine_z(Shape{fine * fine, 2}, fine_points);
    const Tensor fine_jac = batch_jacobian(f, fine_z);
    double min_det = inf, worst_det_vs_log_det = 0;
    Tensor fine_log_det;
    {
        NoGrad no_grad;
        fine_log_det = flow.forward(Var(fine_z)).log_abs_det_jacobian.value();
    }
    for (std::size_t k = 0; k < fine * fine; ++k) {
        const double d = fine_jac.at({k, 0, 0}) * fine_jac.at({k, 1, 1}) - fine_jac.at({k, 0, 1}) * fine_jac.at({k, 1, 0});
        min_det = std::min(min_det, d);
        worst_det_vs_log_det = std::max(worst_det_vs_log_det, std::abs(std::log(std::abs(d)) - fine_log_det[k]));
    }
    fmt::print(
        "Locally, lines cross where the map folds, and a fold is where det J passes through 0. The\n"
        "tape's Jacobian on a {0}×{0} grid over [−4, 4]² (two backward passes for all points: the\n"
        "rows of a batch do not interact, so ∂(Σ_n f(z_n)_i)/∂z holds row i of every J):\n\n",
        fine);
    verifier.check("det J_f > 0 at every grid point", min_det > 0, fmt::format("min det J = {:.6f}", min_det));
    verifier.check_error("max |log|det tape J| − flow's|", worst_det_vs_log_det, 1e-12);

    // The round trips, on the grid points.
    {
        NoGrad no_grad;
        const Tensor there = flow.forward(Var(fine_z)).value.value();
        const Tensor back = flow.inverse(Var(there)).value.value();
        const Tensor xs = fine_z;  // the same points read as x
        const Tensor x_back = flow.forward(flow.inverse(Var(xs)).value).value.value();
        verifier.check_error("round trip z → x → z, max |error|", max_abs_diff(back, fine_z), 1e-12);
        verifier.check_error("round trip x → z → x, max |error|", max_abs_diff(x_back, xs), 1e-12);
    }
    // The figures draw a coarser grid than the one counted, so each line stays visible.
    const int drawn_lines = 13, drawn_per_cell = 5;
    const std::vector<Polyline> z_drawn = square_grid(reach, drawn_lines, drawn_per_cell);
    const std::vector<Polyline> x_drawn = square_grid(reach + 1, drawn_lines, drawn_per_cell);
    {
        const std::vector<Polyline> z_drawn_in_x = map_lines(z_drawn, f), x_drawn_in_z = map_lines(x_drawn, f_inverse);
        plot::Figure fig(2, 2, 400, 380);
        std::vector<double> zs1, zs2, xs1, xs2;
        {
            const std::size_t n = 1500;
            Rng picture_rng(opt.seed + 1);
            const Tensor zs = randn(Shape{n, 2}, picture_rng);
            NoGrad no_grad;
            const Tensor xs = flow.forward(Var(zs)).value.value();
            for (std::size_t k = 0; k < n; ++k) {
                zs1.push_back(zs.at({k, 0}));
                zs2.push_back(zs.at({k, 1}));
                xs1.push_back(xs.at({k, 0}));
                xs2.push_back(xs.at({k, 1}));
            }
        }
        const plot::Style dots{.colour = "#444444", .radius = 1.2, .opacity = 0.35};
        struct Panel {
            int row, col;
            const std::vector<Polyline>* lines;
            const std::vector<double>*sx, *sy;
            std::string title, xlabel, ylabel;
        };
        // The panel order of the RealNVP paper's Figure 1 (and of tutorial 07's): inference on top, x
        // on the left mapped to z on the right; generation below, z on the left mapped to x.
        const Panel panels[4] = {
            {0, 0, &x_drawn, &xs1, &xs2, "inference: a grid in x, x = f(z)", "x₁", "x₂"},
            {0, 1, &x_drawn_in_z, &zs1, &zs2, "… pulled back to z by f⁻¹", "z₁", "z₂"},
            {1, 0, &z_drawn, &zs1, &zs2, "generation: a grid in z, z ~ p_z", "z₁", "z₂"},
            {1, 1, &z_drawn_in_x, &xs1, &xs2, "… pushed to x by f", "x₁", "x₂"},
        };
        for (const Panel& p : panels) {
            plot::Axes& ax = fig.axes(p.row, p.col);
            draw_grid(ax, *p.lines);
            ax.scatter(*p.sx, *p.sy, dots);
            ax.set_title(p.title).set_xlabel(p.xlabel).set_ylabel(p.ylabel).set_xlim(-5, 5).set_ylim(-5, 5).equal_aspect();
        }
        fig.title("x = f₃(f₂(f₁(z))): planar, radial, affine");
        const std::string path = (out_dir / "grids.svg").string();
        fig.save(path);
        fmt::print("\nFigure: {}\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("A fold: what the invertibility constraint prevents");
    // A hand-written planar map with wᵀu = −2 < −1, which the layer's reparameterization never allows.
    const double fold_w[2] = {2.0, 0.0}, fold_b = 0.0;
    const double fold_u[2] = {-1.0, 1.5};
    const Map fold = [&](const Var& z) {
        const Var along = tanh(matmul(z, Var(Tensor(Shape{2, 1}, {fold_w[0], fold_w[1]}))) + fold_b);  // [N, 1]
        return z + along * Var(Tensor{{fold_u[0], fold_u[1]}});
    };
    const std::vector<Polyline> folded = map_lines(z_grid, fold);
    const GridTopology fold_topology = grid_topology(folded);
    const Tensor fold_jac = batch_jacobian(fold, fine_z);
    double fold_min_det = inf, fold_max_det = -inf;
    for (std::size_t k = 0; k < fine * fine; ++k) {
        const double d = fold_jac.at({k, 0, 0}) * fold_jac.at({k, 1, 1}) - fold_jac.at({k, 0, 1}) * fold_jac.at({k, 1, 0});
        fold_min_det = std::min(fold_min_det, d);
        fold_max_det = std::max(fold_max_det, d);
    }
    fmt::print(
        "f(z) = z + u·tanh(wᵀz) with w = ({}, {}) and u = ({:.2f}, {:.2f}), so wᵀu = −2: along w the map is\n"
        "s ↦ s − 2·tanh(s), which goes down then up. det J = 1 + sech²(wᵀz)·wᵀu = 1 − 2·sech²(wᵀz) is\n"
        "negative near the line wᵀz = 0: the plane is folded over itself there, three points of z land\n"
        "on one x, and no inverse exists. The same detectors as above:\n\n",
        fold_w[0], fold_w[1], fold_u[0], fold_u[1]);
    print_indented(plot::ascii_table(
        {"", "value"},
        {{"det J on the fine grid", fmt::format("from {:.4f} to {:.4f}", fold_min_det, fold_max_det)},
         {"crossings within a family", fmt::format("{}", fold_topology.same_family_crossings)},
         {"pairs across families not meeting once", fmt::format("{} of {}", fold_topology.cross_pairs_not_once,
                                                                 lines * lines)}}));
    fmt::print("\n");
    verifier.check("det J changes sign", fold_min_det < 0 && fold_max_det > 0);
    verifier.check("folded lines cross", fold_topology.same_family_crossings > 0 && fold_topology.cross_pairs_not_once > 0);
    verifier.check_close("det J at the fold's centre", {"grid minimum", fold_min_det}, {"1 + wᵀu", -1.0}, 0, 0.02);
    {
        plot::Figure fig(1, 2, 400, 380);
        plot::Axes& left = fig.axes(0, 0);
        draw_grid(left, z_drawn);
        left.set_title("a grid in z").set_xlabel("z₁").set_ylabel("z₂").set_xlim(-4, 4).set_ylim(-4, 4).equal_aspect();
        plot::Axes& right = fig.axes(0, 1);
        draw_grid(right, map_lines(z_drawn, fold));
        right.set_title("z + u·tanh(wᵀz), wᵀu = −2: folded")
            .set_xlabel("x₁")
            .set_ylabel("x₂")
            .set_xlim(-4, 4)
            .set_ylim(-4, 4)
            .equal_aspect();
        const std::string path = (out_dir / "fold.svg").string();
        fig.save(path);
        fmt::print("\nFigure: {}\n", path);
    }

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("04_change_of_variables_nd",
                                "Jacobians and log-determinants in 2-D, log-dets adding along a chain, a pushforward "
                                "density that integrates to 1, grid lines that bend but never cross");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
