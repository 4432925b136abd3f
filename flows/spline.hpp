// The monotonic rational-quadratic spline of Neural Spline Flows (Durkan et al. 2019, eqs. 4-8 and
// appendix A; docs/theory.md §9), elementwise, with identity tails.
//
// On [−B, B] the map is built from K bins whose K + 1 knots (x⁽ᵏ⁾, y⁽ᵏ⁾) run from (−B, −B) to (B, B),
// with a positive derivative δ⁽ᵏ⁾ at every knot; the two boundary derivatives are 1, so the map joins
// the identity outside [−B, B] with a continuous first derivative. Inside bin k, with
//     w = x⁽ᵏ⁺¹⁾ − x⁽ᵏ⁾,  h = y⁽ᵏ⁺¹⁾ − y⁽ᵏ⁾,  s = h / w,  ξ = (x − x⁽ᵏ⁾) / w ∈ [0, 1]:
//
//     g(x)  = y⁽ᵏ⁾ + h [s ξ² + δ⁽ᵏ⁾ ξ(1 − ξ)] / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1 − ξ)]           (eq. 4)
//     g'(x) = s² [δ⁽ᵏ⁺¹⁾ ξ² + 2s ξ(1 − ξ) + δ⁽ᵏ⁾ (1 − ξ)²] / [s + (δ⁽ᵏ⁺¹⁾ + δ⁽ᵏ⁾ − 2s) ξ(1 − ξ)]²  (eq. 5)
//
// g' > 0 whenever s and every δ are positive, so g is strictly increasing; its inverse solves a
// quadratic in ξ (appendix A, eqs. 6-8). Direction: `forward` (latent → data) applies g, `inverse`
// applies g⁻¹; both are closed form and cost the same.
//
// The 3K − 1 unconstrained parameters of one coordinate ("raw", from a network or a Parameter):
//     columns [0, K)        bin widths  w = m_w + (1 − K m_w) softmax(raw_w)   (fractions of 2B)
//     columns [K, 2K)       bin heights h = m_h + (1 − K m_h) softmax(raw_h)
//     columns [2K, 3K − 1)  interior derivatives δ = m_δ + softplus(raw_δ + softplus⁻¹(1 − m_δ))
// The shift inside the softplus makes raw = 0 the identity map (uniform bins, every δ = 1), so a
// conditioner whose last layer starts at zero starts as the identity, as the affine coupling does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "autograd/var.hpp"
#include "flows/bijector.hpp"

namespace tapeflow::flows {

struct SplineOptions {
    std::size_t bins = 8;           // K ≥ 1
    double bound = 3;               // B > 0: the spline acts on [−B, B], the identity outside
    double min_bin_width = 1e-3;    // m_w ∈ [0, 1/K): no bin narrower than 2B·m_w
    double min_bin_height = 1e-3;   // m_h ∈ [0, 1/K)
    double min_derivative = 1e-3;   // m_δ ∈ [0, 1): no knot flatter than this
};

// Throws std::invalid_argument naming `who` and the offending field unless the options are valid.
void require_spline_options(const SplineOptions& options, std::string_view who);

// The raw parameters per coordinate: 3K − 1.
constexpr std::size_t spline_parameters_per_dim(std::size_t bins) { return 3 * bins - 1; }

// The knots of the splines described by raw [N, D, 3K − 1]: x, y and δ, each [N, D, K + 1]. The first
// and last knots are exactly (−B, −B) and (B, B) and the boundary δ exactly 1.
struct SplineKnots {
    Var x, y, derivative;
};
SplineKnots spline_knots(const Var& raw, const SplineOptions& options);

// g (inverse = false) or g⁻¹ (inverse = true) applied to every entry of u [N, D], coordinate (n, d)
// with the spline raw[n, d, :] (raw [N, D, 3K − 1]), and log g' (or log (g⁻¹)' = −log g' at g⁻¹(u))
// per entry, 0 in the tails. Differentiable in u and raw. Throws std::invalid_argument for invalid
// options, a u that is not [N, D] or a raw that is not [N, D, 3K − 1] (naming both shapes).
struct SplineValue {
    Var value;           // [N, D]
    Var log_derivative;  // [N, D]
};
SplineValue rational_quadratic_spline(const Var& u, const Var& raw, const SplineOptions& options, bool inverse);

// The elementwise bijector: coordinate d has its own spline, from the Parameter "raw" [D, 3K − 1]
// (zero: the identity). log|det| is the sum of the log-derivatives over the D coordinates.
class RationalQuadraticSpline : public Bijector {
public:
    // Throws std::invalid_argument for D = 0 or invalid options.
    RationalQuadraticSpline(std::size_t dim, SplineOptions options = {});
    // With the given raw parameters [D, 3K − 1] (finite). Throws for another shape or invalid options.
    RationalQuadraticSpline(const Tensor& raw, SplineOptions options = {});

    // Both throw std::invalid_argument for an input that is not [N, D].
    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    // "RationalQuadraticSpline(D = 2, K = 8, B = 3)".
    std::string name() const override;

    const SplineOptions& options() const { return options_; }
    Parameter& raw() { return raw_; }

private:
    Transformed apply(const Var& u, bool inverse, const char* who);
    std::size_t dim_;
    SplineOptions options_;
    Parameter& raw_;
};

}  // namespace tapeflow::flows
