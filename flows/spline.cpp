#include "flows/spline.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/search.hpp"
#include "tensor/stable.hpp"

namespace tapeflow::flows {

namespace {

// Knot positions from bin sizes [N, D, K] that sum to 1: −B, then −B + 2B·(partial sums), and exactly B
// last (the sum of a softmax is 1 only up to rounding; the last knot must be B so the tail joins).
Var knot_positions(const Var& sizes, double bound) {
    const Shape& s = sizes.shape();
    const std::size_t n = s[0], d = s[1], k = s[2];
    const Var low(Tensor::full(Shape{n, d, 1}, -bound)), high(Tensor::full(Shape{n, d, 1}, bound));
    if (k == 1) return concat({low, high}, 2);
    const Var inner = cumsum(narrow(sizes, 2, 0, k - 1), 2) * (2 * bound) - bound;
    return concat({low, inner, high}, 2);
}

// The entries of knots [N, D, K + 1] at bin indices [N, D, 1], as [N, D].
Var at_bins(const Var& knots, const Tensor& bins) {
    const Shape& s = knots.shape();
    return reshape(take_along_axis(knots, bins, 2), Shape{s[0], s[1]});
}


// The quantities of eqs. 4-5 at one entry, from ξ and the bin's h, s, δ⁽ᵏ⁾, δ⁽ᵏ⁺¹⁾, with the partial
// derivatives the fused backward needs (each by hand from the formulas above; tests/flows/spline_test.cpp
// checks them against the composed ops and by finite differences).
struct BinTerms {
    double t, kappa, denominator, numerator, slope_numerator;  // ξ(1 − ξ), κ, D, P, N' (g' = s² N' / D²)
    double value_dxi, value_ds, value_ddk, value_ddk1;         // ∂(hP/D) at fixed h
    double log_dxi, log_ds, log_ddk, log_ddk1;                 // ∂ log g'
    BinTerms(double xi, double h, double s, double dk, double dk1) {
        t = xi * (1 - xi);
        kappa = dk1 + dk - 2 * s;
        denominator = s + kappa * t;
        numerator = s * xi * xi + dk * t;
        slope_numerator = dk1 * xi * xi + 2 * s * t + dk * (1 - xi) * (1 - xi);
        const double d = denominator, p = numerator, dd = d * d;
        const double d_xi = kappa * (1 - 2 * xi), d_s = 1 - 2 * t;  // ∂D/∂ξ, ∂D/∂s (κ holds −2s)
        value_dxi = h * ((2 * s * xi + dk * (1 - 2 * xi)) * d - p * d_xi) / dd;
        value_ds = h * (xi * xi * d - p * d_s) / dd;
        value_ddk = h * t * (d - p) / dd;
        value_ddk1 = -h * p * t / dd;
        const double n = slope_numerator;
        log_dxi = (2 * dk1 * xi + 2 * s * (1 - 2 * xi) - 2 * dk * (1 - xi)) / n - 2 * d_xi / d;
        log_ds = 2 / s + 2 * t / n - 2 * d_s / d;
        log_ddk = (1 - xi) * (1 - xi) / n - 2 * t / d;
        log_ddk1 = xi * xi / n - 2 * t / d;
    }
    double log_slope(double s) const { return 2 * std::log(s) + std::log(slope_numerator) - 2 * std::log(denominator); }
};

// ξ of y in its bin by appendix A's stable root (see the comment in rational_quadratic_spline).
double inverse_xi(double dy, double h, double s, double dk, double dk1) {
    const double kappa = dk1 + dk - 2 * s;
    const double a = h * (s - dk) + dy * kappa, b = h * dk - dy * kappa, c = -s * dy;
    return 2 * c / (-b - std::sqrt(b * b - 4 * a * c));
}

// Eqs. 4-5 (inverse = false) or appendix A (inverse = true) on gathered bin quantities, all [N, D], as
// one node: its output [N, 2D] holds the values in columns [0, D) and ±log g' in [D, 2D).
Var spline_in_bins(const Var& u, const Var& xk, const Var& w, const Var& yk, const Var& h, const Var& dk, const Var& dk1,
                   bool inverse) {
    const std::size_t n = u.shape()[0], d = u.shape()[1], count = n * d;
    const Tensor &U = u.value(), &XK = xk.value(), &W = w.value(), &YK = yk.value(), &H = h.value(), &DK = dk.value(),
                 &DK1 = dk1.value();
    Tensor out(Shape{n, 2 * d});
    for (std::size_t i = 0; i < count; ++i) {
        const double s = H[i] / W[i];
        const double xi = inverse ? inverse_xi(U[i] - YK[i], H[i], s, DK[i], DK1[i]) : (U[i] - XK[i]) / W[i];
        const BinTerms b(xi, H[i], s, DK[i], DK1[i]);
        const double log_g = b.log_slope(s);
        const std::size_t row = i / d, col = i % d;
        out[row * 2 * d + col] = inverse ? XK[i] + xi * W[i] : YK[i] + H[i] * b.numerator / b.denominator;
        out[row * 2 * d + d + col] = inverse ? -log_g : log_g;
    }
    return record("rational_quadratic_spline", std::move(out), {u, xk, w, yk, h, dk, dk1}, [n, d, inverse](Backward& ctx) {
        const std::size_t count = n * d;
        const Tensor &G = ctx.grad(), &U = ctx.input(0), &XK = ctx.input(1), &W = ctx.input(2), &YK = ctx.input(3),
                     &H = ctx.input(4), &DK = ctx.input(5), &DK1 = ctx.input(6);
        Tensor gu(Shape{n, d}), gxk(Shape{n, d}), gw(Shape{n, d}), gyk(Shape{n, d}), gh(Shape{n, d}), gdk(Shape{n, d}),
            gdk1(Shape{n, d});
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t row = i / d, col = i % d;
            const double g_value = G[row * 2 * d + col], g_log = G[row * 2 * d + d + col];
            const double w_i = W[i], h_i = H[i], s = h_i / w_i;
            double g_s = 0;
            if (!inverse) {
                // value = y⁽ᵏ⁾ + hP/D and log g' as functions of ξ = (u − x⁽ᵏ⁾)/w, s = h/w, h, δ's.
                const double xi = (U[i] - XK[i]) / w_i;
                const BinTerms b(xi, h_i, s, DK[i], DK1[i]);
                const double g_xi = g_value * b.value_dxi + g_log * b.log_dxi;
                g_s = g_value * b.value_ds + g_log * b.log_ds;
                gu[i] = g_xi / w_i;
                gxk[i] = -g_xi / w_i;
                gw[i] = -g_xi * xi / w_i;
                gyk[i] = g_value;
                gh[i] = g_value * b.numerator / b.denominator;
                gdk[i] = g_value * b.value_ddk + g_log * b.log_ddk;
                gdk1[i] = g_value * b.value_ddk1 + g_log * b.log_ddk1;
            } else {
                // ξ solves F = y⁽ᵏ⁾ + hP/D − y = 0, so ∂ξ/∂θ = −F_θ / F_ξ (implicit function theorem);
                // the outputs are x = x⁽ᵏ⁾ + ξw and −log g'(ξ).
                const double xi = inverse_xi(U[i] - YK[i], h_i, s, DK[i], DK1[i]);
                const BinTerms b(xi, h_i, s, DK[i], DK1[i]);
                const double r = (g_value * w_i - g_log * b.log_dxi) / b.value_dxi;  // d out/dξ ÷ F_ξ
                g_s = -r * b.value_ds - g_log * b.log_ds;
                gu[i] = r;
                gyk[i] = -r;
                gh[i] = -r * b.numerator / b.denominator;
                gdk[i] = -r * b.value_ddk - g_log * b.log_ddk;
                gdk1[i] = -r * b.value_ddk1 - g_log * b.log_ddk1;
                gxk[i] = g_value;
                gw[i] = g_value * xi;
            }
            // s = h / w.
            gh[i] += g_s / w_i;
            gw[i] -= g_s * s / w_i;
        }
        Tensor* grads[] = {&gu, &gxk, &gw, &gyk, &gh, &gdk, &gdk1};
        for (std::size_t k = 0; k < 7; ++k)
            if (ctx.needs_grad(k)) ctx.accumulate(k, std::move(*grads[k]));
    },
                  [n, d, inverse](const Forward& t) {
                      // The same partial derivatives as the backward, applied to the inputs' tangents
                      // instead of transposed onto the outputs' gradients: ṡ = (ḣ − s·ẇ)/w, and ξ̇ =
                      // (u̇ − ẋ⁽ᵏ⁾ − ξ·ẇ)/w forward or, inverse, −Ḟ/F_ξ with Ḟ the tangent of
                      // y⁽ᵏ⁾ + hP/D − y at fixed ξ (implicit function theorem).
                      const std::size_t count = n * d;
                      const Tensor &U = t.input(0), &XK = t.input(1), &W = t.input(2), &YK = t.input(3),
                                   &H = t.input(4), &DK = t.input(5), &DK1 = t.input(6);
                      const Tensor dU = t.tangent(0), dXK = t.tangent(1), dW = t.tangent(2), dYK = t.tangent(3),
                                   dH = t.tangent(4), dDK = t.tangent(5), dDK1 = t.tangent(6);
                      Tensor out(Shape{n, 2 * d});
                      for (std::size_t i = 0; i < count; ++i) {
                          const double w_i = W[i], h_i = H[i], s = h_i / w_i;
                          const double ds = (dH[i] - s * dW[i]) / w_i;
                          const double xi = inverse ? inverse_xi(U[i] - YK[i], h_i, s, DK[i], DK1[i]) : (U[i] - XK[i]) / w_i;
                          const BinTerms b(xi, h_i, s, DK[i], DK1[i]);
                          // Everything but ξ's share: of hP/D (at fixed ξ) and of log g'.
                          const double value_rest = dYK[i] + b.numerator / b.denominator * dH[i] + b.value_ds * ds +
                                                    b.value_ddk * dDK[i] + b.value_ddk1 * dDK1[i];
                          const double log_rest = b.log_ds * ds + b.log_ddk * dDK[i] + b.log_ddk1 * dDK1[i];
                          const std::size_t row = i / d, col = i % d;
                          double value, log_g;
                          if (!inverse) {
                              const double dxi = (dU[i] - dXK[i] - xi * dW[i]) / w_i;
                              value = value_rest + b.value_dxi * dxi;
                              log_g = log_rest + b.log_dxi * dxi;
                          } else {
                              const double dxi = (dU[i] - value_rest) / b.value_dxi;
                              value = dXK[i] + w_i * dxi + xi * dW[i];
                              log_g = -(log_rest + b.log_dxi * dxi);
                          }
                          out[row * 2 * d + col] = value;
                          out[row * 2 * d + d + col] = log_g;
                      }
                      return out;
                  });
}
}  // namespace

void require_spline_options(const SplineOptions& o, std::string_view who) {
    if (o.bins < 1) throw std::invalid_argument(fmt::format("{}: the number of bins K must be at least 1, got 0", who));
    if (!(o.bound > 0) || !std::isfinite(o.bound))
        throw std::invalid_argument(fmt::format("{}: the bound B must be finite and > 0, got {}", who, o.bound));
    const double k = static_cast<double>(o.bins);
    if (!(o.min_bin_width >= 0) || !(o.min_bin_width * k < 1))
        throw std::invalid_argument(fmt::format(
            "{}: min_bin_width must lie in [0, 1/K) = [0, {:g}) for K = {} bins, got {}", who, 1 / k, o.bins, o.min_bin_width));
    if (!(o.min_bin_height >= 0) || !(o.min_bin_height * k < 1))
        throw std::invalid_argument(fmt::format("{}: min_bin_height must lie in [0, 1/K) = [0, {:g}) for K = {} bins, got {}",
                                                who, 1 / k, o.bins, o.min_bin_height));
    if (!(o.min_derivative >= 0) || !(o.min_derivative < 1))
        throw std::invalid_argument(
            fmt::format("{}: min_derivative must lie in [0, 1) (the boundary derivatives are 1), got {}", who, o.min_derivative));
}

SplineKnots spline_knots(const Var& raw, const SplineOptions& o) {
    require_spline_options(o, "spline_knots");
    const std::size_t k = o.bins, p = spline_parameters_per_dim(k);
    const Shape& s = raw.shape();
    if (s.rank() != 3 || s[2] != p)
        throw std::invalid_argument(fmt::format(
            "spline_knots: expects raw parameters [N, D, 3K − 1] = [N, D, {}] for K = {} bins, got shape {}", p, k, s));
    const std::size_t n = s[0], d = s[1];
    const double kd = static_cast<double>(k);
    // Widths and heights: softmax keeps them positive and summing to 1; the floor m keeps every bin
    // at least m wide (Durkan et al. appendix B), with 1 − K m left for the softmax to share out.
    const Var widths = softmax(narrow(raw, 2, 0, k), 2) * (1 - kd * o.min_bin_width) + o.min_bin_width;
    const Var heights = softmax(narrow(raw, 2, k, k), 2) * (1 - kd * o.min_bin_height) + o.min_bin_height;
    const Var one(Tensor::ones(Shape{n, d, 1}));
    Var derivative;
    if (k == 1) {
        derivative = concat({one, one}, 2);
    } else {
        // δ = m_δ + softplus(raw + softplus⁻¹(1 − m_δ)): raw = 0 gives δ = 1, the identity.
        const double shift = stable::inverse_softplus(1 - o.min_derivative);
        const Var inner = softplus(narrow(raw, 2, 2 * k, k - 1) + shift) + o.min_derivative;
        derivative = concat({one, inner, one}, 2);
    }
    return {knot_positions(widths, o.bound), knot_positions(heights, o.bound), derivative};
}

SplineValue rational_quadratic_spline(const Var& u, const Var& raw, const SplineOptions& o, bool inverse) {
    const char* who = "rational_quadratic_spline";
    require_spline_options(o, who);
    const Shape& us = u.shape();
    if (us.rank() != 2)
        throw std::invalid_argument(fmt::format("{}: expects an input [N, D], got shape {}", who, us));
    const std::size_t n = us[0], d = us[1], p = spline_parameters_per_dim(o.bins);
    if (!(raw.shape() == Shape{n, d, p}))
        throw std::invalid_argument(
            fmt::format("{}: for an input {} and K = {} bins the raw parameters must be [N, D, 3K − 1] = [{}, {}, {}], got {}",
                        who, us, o.bins, n, d, p, raw.shape()));
    const SplineKnots knots = spline_knots(raw, o);
    const double bound = o.bound;

    // The tails are the identity. Entries outside [−B, B] are moved to 0 before the spline formula, so
    // it stays finite there (where's trap: a NaN in the branch not taken would poison the gradient);
    // `where` then picks u itself for them (a mask product would turn an infinite u into 0 · ∞ = NaN).
    const Tensor inside = map(u.value(), [bound](double v) { return v >= -bound && v <= bound ? 1.0 : 0.0; });
    const Var v = where(inside, u, Var(Tensor::zeros(us)));

    // The bin of each entry: the last knot ≤ v (side right), kept in 0 … K − 1 so that v = B falls in
    // the last bin. The knots searched are the x's for g and the y's for g⁻¹.
    const Var& searched = inverse ? knots.y : knots.x;
    Tensor bin = searchsorted(searched.value(), v.value().reshape(Shape{n, d, 1}), Side::right);
    const double last = static_cast<double>(o.bins - 1);
    bin = map(bin, [last](double i) { return std::clamp(i - 1, 0.0, last); });
    const Tensor next = map(bin, [](double i) { return i + 1; });

    const Var xk = at_bins(knots.x, bin), yk = at_bins(knots.y, bin);
    const Var w = at_bins(knots.x, next) - xk, h = at_bins(knots.y, next) - yk;
    const Var dk = at_bins(knots.derivative, bin), dk1 = at_bins(knots.derivative, next);
    if (o.fused) {
        const Var both = spline_in_bins(v, xk, w, yk, h, dk, dk1, inverse);
        const Var zeros(Tensor::zeros(us));
        return {where(inside, narrow(both, 1, 0, d), u), where(inside, narrow(both, 1, d, d), zeros)};
    }
    // The same formulas composed from tape ops (options.fused = false).
    const Var s = h / w;
    const Var curvature = dk1 + dk - 2.0 * s;  // δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s, the denominator's coefficient

    Var xi;
    Var value;
    if (!inverse) {
        xi = (v - xk) / w;
    } else {
        // Appendix A: (y − y⁽ᵏ⁾) times eq. 4's denominator equals h times its numerator, a quadratic
        // a ξ² + b ξ + c = 0 with
        //     a = h (s − δ⁽ᵏ⁾) + (y − y⁽ᵏ⁾) κ,  b = h δ⁽ᵏ⁾ − (y − y⁽ᵏ⁾) κ,  c = −s (y − y⁽ᵏ⁾),   κ = δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s
        // (eqs. 6-8). Its discriminant b² − 4ac is positive, and the root in [0, 1] is the one with
        // +√ in the textbook formula (−b + √(b² − 4ac)) / 2a. We use its equal form
        //     ξ = 2c / (−b − √(b² − 4ac))      (the form Durkan et al. give in appendix A):
        // a vanishes where the bin is a straight line (s = δ⁽ᵏ⁾ = δ⁽ᵏ⁺¹⁾) and the textbook form turns into
        // 0/0, and for small a it subtracts two nearly equal numbers, −b + √(b² − 4ac) with 4ac ≪ b².
        // With c ≤ 0, the form keeps −b and −√(…) of one sign wherever b ≥ 0, which includes the bin's
        // left end (y → y⁽ᵏ⁾: c → 0, b → h δ⁽ᵏ⁾ > 0), so ξ → 0 exactly instead of through a difference; b < 0
        // needs a = hs − b > hs > 0, and then √(b² − 4ac) > |b| keeps the denominator away from 0.
        const Var dy = v - yk;
        const Var a = h * (s - dk) + dy * curvature;
        const Var b = h * dk - dy * curvature;
        const Var c = -(s * dy);
        xi = 2.0 * c / (-b - sqrt(square(b) - 4.0 * a * c));
        value = xi * w + xk;
    }
    const Var t = xi * (1.0 - xi);
    const Var denominator = s + curvature * t;
    if (!inverse) value = yk + h * (s * square(xi) + dk * t) / denominator;  // eq. 4
    // log g' from eq. 5: 2 log s + log[δ⁽ᵏ⁺¹⁾ ξ² + 2s ξ(1 − ξ) + δ⁽ᵏ⁾ (1 − ξ)²] − 2 log(denominator).
    const Var log_g = 2.0 * log(s) + log(dk1 * square(xi) + 2.0 * s * t + dk * square(1.0 - xi)) - 2.0 * log(denominator);
    return {where(inside, value, u), where(inside, inverse ? -log_g : log_g, Var(Tensor::zeros(us)))};
}

RationalQuadraticSpline::RationalQuadraticSpline(std::size_t dim, SplineOptions options)
    : RationalQuadraticSpline(
          [&] {
              require_spline_options(options, "RationalQuadraticSpline");
              if (dim == 0) throw std::invalid_argument("RationalQuadraticSpline: the dimension D must be at least 1");
              return Tensor::zeros(Shape{dim, spline_parameters_per_dim(options.bins)});
          }(),
          options) {}

RationalQuadraticSpline::RationalQuadraticSpline(const Tensor& raw, SplineOptions options)
    : dim_([&] {
          require_spline_options(options, "RationalQuadraticSpline");
          require_defined(raw, "RationalQuadraticSpline");
          const std::size_t p = spline_parameters_per_dim(options.bins);
          if (raw.rank() != 2 || raw.shape()[0] == 0 || raw.shape()[1] != p)
              throw std::invalid_argument(fmt::format(
                  "RationalQuadraticSpline: the raw parameters must be [D, 3K − 1] = [D, {}] for K = {} bins, got shape {}",
                  p, options.bins, raw.shape()));
          if (!all_finite(raw)) throw std::invalid_argument("RationalQuadraticSpline: the raw parameters must be finite");
          return raw.shape()[0];
      }()),
      options_(options),
      raw_(register_parameter("raw", raw.clone())) {}

Transformed RationalQuadraticSpline::apply(const Var& u, bool inverse, const char* who) {
    require_batch(u, dim_, who);
    const std::size_t n = u.shape()[0];
    const Shape per_sample{n, dim_, spline_parameters_per_dim(options_.bins)};
    const Var raw = broadcast_to(unsqueeze(raw_.var(), 0), per_sample);
    const SplineValue out = rational_quadratic_spline(u, raw, options_, inverse);
    return {out.value, sum(out.log_derivative, 1)};
}

Transformed RationalQuadraticSpline::forward(const Var& z) { return apply(z, false, "RationalQuadraticSpline::forward"); }

Transformed RationalQuadraticSpline::inverse(const Var& x) { return apply(x, true, "RationalQuadraticSpline::inverse"); }

std::string RationalQuadraticSpline::name() const {
    return fmt::format("RationalQuadraticSpline(D = {}, K = {}, B = {:g})", dim_, options_.bins, options_.bound);
}

}  // namespace tapeflow::flows
