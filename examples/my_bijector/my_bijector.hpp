// SoftLeaky: a smooth leaky ReLU as a learnable elementwise bijector — how to write a bijector of
// your own on top of an installed tapeflow (tutorial 08 explains the recipe step by step).
//
//     x = f(z) = z + c (√(1 + z²) − 1),      c = tanh θ ∈ (−1, 1), one θ per coordinate ("theta" [D])
//
// Its slope f'(z) = 1 + c z/√(1 + z²) runs from 1 − c (z → −∞) to 1 + c (z → +∞) and is never below
// 1 − |c| > 0, so f is a strictly increasing map of R onto R: a leaky ReLU with the corner rounded
// off, whose two slopes are learned. Being elementwise, its Jacobian is diagonal:
//
//     log|det ∂x/∂z| = Σ_d log1p(c_d z_d / √(1 + z_d²))                                    [N]
//
// The inverse is closed-form: with y = x + c, the equation y − z = c √(1 + z²) squares to a quadratic
// in z whose one root with y − z of the sign of c is
//
//     z = f⁻¹(x) = (y − c √(y² + 1 − c²)) / (1 − c²),     log|det ∂z/∂x| = −(the forward log-det at z).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/bijector.hpp"

namespace my_bijector {

using tapeflow::Tensor;
using tapeflow::Var;
using tapeflow::flows::Transformed;

class SoftLeaky : public tapeflow::flows::Bijector {
public:
    // θ [D]: c = tanh θ per coordinate (θ = 0 is the identity). Throws std::invalid_argument unless
    // θ is a non-empty vector.
    explicit SoftLeaky(const Tensor& theta) : dim_(checked_dim(theta)), theta_(register_parameter("theta", theta.clone())) {}
    // The identity on R^D.
    explicit SoftLeaky(std::size_t dim) : SoftLeaky(Tensor::zeros(tapeflow::Shape{dim})) {}

    Transformed forward(const Var& z) override {
        tapeflow::flows::require_batch(z, dim_, "SoftLeaky::forward");
        const Var c = slope_gap();
        const Var root = sqrt(1.0 + square(z));
        // √(1 + z²) − 1 written as z²/(1 + √(1 + z²)): no cancellation for small |z|.
        const Var x = z + c * (square(z) / (1.0 + root));
        return {x, log_det(z, root, c)};
    }

    Transformed inverse(const Var& x) override {
        tapeflow::flows::require_batch(x, dim_, "SoftLeaky::inverse");
        const Var c = slope_gap();
        const Var y = x + c;
        // 1 − c² as (1 − c)(1 + c): accurate as |c| → 1, where 1 − c² would round.
        const Var one_minus_c2 = (1.0 - c) * (1.0 + c);
        const Var z = (y - c * sqrt(square(y) + one_minus_c2)) / one_minus_c2;
        return {z, -log_det(z, sqrt(1.0 + square(z)), c)};
    }

    std::size_t dim() const override { return dim_; }
    std::string name() const override { return fmt::format("SoftLeaky(D = {})", dim_); }

    tapeflow::Parameter& theta() { return theta_; }

private:
    static std::size_t checked_dim(const Tensor& theta) {
        if (!theta.defined() || theta.rank() != 1 || theta.numel() == 0)
            throw std::invalid_argument(fmt::format("SoftLeaky: theta must be a non-empty vector [D], got {}",
                                                    theta.defined() ? fmt::format("{}", theta.shape()) : "an undefined tensor"));
        return theta.numel();
    }

    Var slope_gap() { return tanh(theta_.var()); }

    // Σ_d log1p(c z/√(1 + z²)) per sample: the argument of log1p is > −1 because |c| < 1.
    static Var log_det(const Var& z, const Var& root, const Var& c) { return sum(log1p(c * (z / root)), 1); }

    std::size_t dim_;
    tapeflow::Parameter& theta_;
};

}  // namespace my_bijector
