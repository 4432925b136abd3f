#include "flows/planar.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/stable.hpp"

namespace tapeflow::flows {

namespace {

// û and wᵀû from the free parameters (docs/theory.md §3).
struct Constrained {
    Var u_hat;       // [D]
    Var c;           // wᵀû = softplus(wᵀu) − 1, a scalar
    Var c_plus_one;  // 1 + wᵀû = softplus(wᵀu) > 0
};

Constrained constrain(const Var& u, const Var& w) {
    const Var a = sum(w * u);
    const Var w_norm2 = sum(square(w));
    // w = 0 exactly makes f a translation by û tanh(b), invertible for any û; the correction
    // along w/‖w‖² has no direction then, so û = u (and wᵀû = 0).
    if (w_norm2.item() == 0) return {u, a, a + 1.0};
    // m(a) − a = softplus(a) − 1 − a = softplus(−a) − 1, without the cancellation of a − a for a ≫ 0.
    // Divided by ‖w‖², not ‖w‖: then wᵀû = wᵀu + (m(a) − a) = m(a) exactly.
    const Var u_hat = u + ((softplus(-a) - 1.0) / w_norm2) * w;
    const Var c_plus_one = softplus(a);
    return {u_hat, c_plus_one - 1.0, c_plus_one};
}

// log(1 + sech²(t) · c) per sample, from h = tanh(t). For c ≥ −½ the argument is ≥ ½ and log1p keeps
// small log-dets accurate; below, 1 + sech² c = tanh² + sech² (1 + c) is a sum of two non-negative
// terms, which stays accurate as c → −1 where the direct form cancels to 0 (docs/theory.md §3).
// sech² = 1 − tanh² loses its relative accuracy only where tanh² ≈ 1, and there the log-det is
// ≈ 0 with an absolute error of a few ε either way.
Var log_one_plus_sech2_c(const Var& h, const Constrained& k) {
    const Var h2 = square(h);
    const Var sech2 = 1.0 - h2;
    if (k.c.item() >= -0.5) return log1p(sech2 * k.c);
    return log(h2 + sech2 * k.c_plus_one);
}

// sech² t = 4e^{−2|t|}/(1 + e^{−2|t|})²: no overflow of cosh, no cancellation of 1 − tanh².
double sech2(double t) {
    const double e = std::exp(-2 * std::abs(t));
    return 4 * e / ((1 + e) * (1 + e));
}

// g'(α) = 1 + c sech²(α + b) = tanh²(α + b) + sech²(α + b)(1 + c), with t = α + b.
double slope(double t, double c_plus_one) {
    const double th = std::tanh(t);
    return th * th + sech2(t) * c_plus_one;
}

constexpr int max_iterations = 200;
constexpr double epsilon = std::numeric_limits<double>::epsilon();

}  // namespace

PlanarRoot solve_planar_alpha(double s, double c, double c_plus_one, double b) {
    if (c == 0 || !std::isfinite(s)) return {s, 0};  // the identity; ±inf and NaN map to themselves
    // g(α) = α + c tanh(α + b) − s is strictly increasing and g(s − |c|) ≤ 0 ≤ g(s + |c|).
    double lo = s - std::abs(c), hi = s + std::abs(c);
    // One fixed-point step from α = s: exact where tanh is flat over the bracket, a good start otherwise.
    double alpha = std::clamp(s - c * std::tanh(s + b), lo, hi);
    // The safeguard of Numerical Recipes' rtsafe: a Newton step that leaves the bracket, or that is
    // not below half the step before last (Newton stalling or cycling far from the root), becomes a
    // bisection, so the bracket at least halves every two iterations.
    double step = hi - lo, step_before = step;
    int it = 0;
    while (it < max_iterations) {
        ++it;
        const double t = alpha + b;
        const double th = std::tanh(t);
        const double s2 = sech2(t);
        const double c_sech2 = c * s2;
        const double g = alpha + c * th - s;
        // The rounding error of g: a few ulps of each term, plus the rounding of t = α + b amplified
        // by ∂g/∂t = c sech² t. Once |g| is below it, α is the root to the precision the equation
        // has in doubles; further steps would only chase noise.
        const double noise =
            2 * epsilon * (std::abs(alpha) + std::abs(c * th) + std::abs(s) + std::abs(c_sech2) * (std::abs(alpha) + std::abs(b)));
        const double newton = g / (th * th + s2 * c_plus_one);  // g'(α) without cancellation
        if (std::abs(g) <= noise) {
            // One last Newton step from there lands within rounding of the root.
            if (newton != 0 && (g < 0 ? alpha - newton < hi : alpha - newton > lo)) alpha -= newton;
            break;
        }
        (g < 0 ? lo : hi) = alpha;
        double next = alpha - newton;
        const double limit = step_before;
        step_before = step;
        if (next > lo && next < hi && 2 * std::abs(newton) <= std::abs(limit)) {
            step = newton;
        } else {
            step = 0.5 * (hi - lo);
            next = lo + step;
        }
        // A step below half an ulp, or a bracket closed to adjacent doubles, ends the search.
        if (next == alpha) break;
        alpha = next;
    }
    return {alpha, it};
}

Planar::Planar(std::size_t dim, Rng& rng, PlanarOptions options)
    : dim_(dim),
      u_(register_parameter("u", randn(Shape{dim}, rng, 0.0, options.init_std))),
      w_(register_parameter("w", randn(Shape{dim}, rng, 0.0, options.init_std))),
      b_(register_parameter("b", Tensor::zeros(Shape{1}))) {
    if (dim == 0) throw std::invalid_argument("Planar: the dimension D must be at least 1");
    if (!(options.init_std >= 0))
        throw std::invalid_argument(fmt::format("Planar: init_std must be ≥ 0, got {}", options.init_std));
    if (options.near_identity) {
        const double ww = sum(w_.value * w_.value).item();
        if (!(ww > 0))
            throw std::invalid_argument("Planar: near_identity needs init_std > 0 (w = 0 has no direction to shear along)");
        const double target = std::log(std::expm1(1.0));  // softplus⁻¹(1): m(wᵀu) = 0
        u_.value = u_.value + w_.value * ((target - sum(u_.value * w_.value).item()) / ww);
    }
}

Transformed Planar::forward(const Var& z) {
    require_batch(z, dim_, "Planar::forward");
    const Var w = w_.var();
    const Constrained k = constrain(u_.var(), w);
    const Var h = tanh(sum(z * w, 1) + b_.var());  // tanh(wᵀz + b), [N]
    return {z + unsqueeze(h, 1) * k.u_hat, log_one_plus_sech2_c(h, k)};
}

Transformed Planar::inverse(const Var& y) {
    require_batch(y, dim_, "Planar::inverse");
    const Var w = w_.var();
    const Var b = b_.var();
    const Constrained k = constrain(u_.var(), w);
    const Var s = sum(y * w, 1);  // wᵀy = α + c tanh(α + b), [N]

    const std::size_t n = s.numel();
    const double c = k.c.item(), c_plus_one = k.c_plus_one.item(), bv = b.item();
    Tensor alpha_star(Shape{n}), g_prime(Shape{n});
    last_inverse_iterations_ = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const PlanarRoot root = solve_planar_alpha(s.value()[i], c, c_plus_one, bv);
        alpha_star[i] = root.alpha;
        g_prime[i] = slope(root.alpha + bv, c_plus_one);
        last_inverse_iterations_ = std::max(last_inverse_iterations_, root.iterations);
    }
    // One recorded Newton step from the root: g(α*) = 0, so its value is α*, and its derivative
    // −(∂g/∂θ)/g'(α*) is the implicit-function-theorem derivative of the root (g' is held constant:
    // its own derivative multiplies g(α*) = 0).
    const Var a_star(alpha_star);
    const Var g = a_star + k.c * tanh(a_star + b) - s;
    const Var alpha = a_star - g / Var(g_prime);
    const Var h = tanh(alpha + b);
    return {y - unsqueeze(h, 1) * k.u_hat, -log_one_plus_sech2_c(h, k)};
}

std::string Planar::name() const { return fmt::format("Planar(D = {})", dim_); }

// Constants made from the parameters' values: ops on them record nothing.
Tensor Planar::u_hat() const { return constrain(Var(u_.value), Var(w_.value)).u_hat.value().clone(); }
double Planar::w_dot_u_hat() const { return constrain(Var(u_.value), Var(w_.value)).c.item(); }
double Planar::one_plus_w_dot_u_hat() const { return constrain(Var(u_.value), Var(w_.value)).c_plus_one.item(); }

}  // namespace tapeflow::flows
