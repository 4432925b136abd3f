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
    // the mask then picks u itself for them.
    const Tensor inside = map(u.value(), [bound](double v) { return v >= -bound && v <= bound ? 1.0 : 0.0; });
    const Var in(inside), out(1.0 - inside);
    const Var v = u * in;

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
        //     ξ = 2c / (−b − √(b² − 4ac))      (Durkan et al. appendix A, eq. 8's stable form):
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
    return {value * in + u * out, (inverse ? -log_g : log_g) * in};
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
