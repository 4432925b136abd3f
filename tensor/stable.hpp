// Numerically stable scalar primitives (the forms Stan Math uses), shared by the tensor ops,
// their backward rules and the flows. Each stays finite wherever its mathematical value is.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

namespace tapeflow::stable {

// softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|): no overflow for large x,
// no loss of the tiny value for very negative x.
inline double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// softplus⁻¹(y) = log(eʸ − 1) for y > 0, written as y + log(1 − e^−y): log(expm1(y)) overflows to
// inf above y ≈ 709, this form is exact there (y) and still accurate as y → 0 (log y). NaN for y < 0,
// −inf at 0, as the inverse of a map onto (0, ∞).
inline double inverse_softplus(double y) { return y + std::log(-std::expm1(-y)); }

// σ(x) = 1 / (1 + e^−x), evaluated so that the exponential never overflows.
inline double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1.0 + e);
}

// log σ(x) = −softplus(−x).
inline double log_sigmoid(double x) { return -softplus(-x); }

// log(eᵃ + eᵇ) = max + log1p(e^−|a−b|); −inf when both are −inf, +inf when both are +inf.
inline double log_add_exp(double a, double b) {
    if (a == b && std::isinf(a)) return a;  // a − b would be inf − inf = NaN
    const double m = std::max(a, b);
    return m + std::log1p(std::exp(-std::abs(a - b)));
}

}  // namespace tapeflow::stable
