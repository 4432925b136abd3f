#include "flows/radial.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/stable.hpp"

namespace tapeflow::flows {

Var row_norm(const Var& v) {
    if (v.value().rank() != 2)
        throw std::invalid_argument(fmt::format("row_norm: expects a 2-D tensor [N, D], got {}", v.shape()));
    return norm(v, 1);
}

namespace {

// The forward log|det| at radius r (docs/theory.md §4), in the cancellation-free form of radial.hpp.
Var radial_log_det(const Var& r, const Var& alpha, const Var& sigma_beta, std::size_t dim) {
    const double D = static_cast<double>(dim);
    Var ld = log(r * (2.0 * alpha + r) + alpha * sigma_beta) - (D + 1) * log(alpha + r);
    if (dim > 1) ld = ld + (D - 1) * log(sigma_beta + r);
    return ld;
}

}  // namespace

Radial::Radial(std::size_t dim, Rng& rng, RadialOptions options)
    : dim_(dim),
      z0_(register_parameter("z0", randn(Shape{dim}, rng, 0.0, options.init_std))),
      alpha_prime_(register_parameter("alpha_prime", randn(Shape{1}, rng, 0.0, options.init_std))),
      beta_prime_(register_parameter("beta_prime", randn(Shape{1}, rng, 0.0, options.init_std))) {
    if (dim == 0) throw std::invalid_argument("Radial: the dimension D must be at least 1");
    if (!(options.init_std >= 0))
        throw std::invalid_argument(fmt::format("Radial: init_std must be ≥ 0, got {}", options.init_std));
}

Transformed Radial::forward(const Var& z) {
    require_batch(z, dim_, "Radial::forward");
    const Var z0 = z0_.var();
    const Var alpha = softplus(alpha_prime_.var());
    const Var sigma_beta = softplus(beta_prime_.var());  // α + β̂
    const Var diff = z - z0;
    const Var r = row_norm(diff);
    const Var x = z0 + diff * unsqueeze((sigma_beta + r) / (alpha + r), 1);  // 1 + β̂ h(r)
    return {x, radial_log_det(r, alpha, sigma_beta, dim_)};
}

Transformed Radial::inverse(const Var& y) {
    require_batch(y, dim_, "Radial::inverse");
    const Var z0 = z0_.var();
    const Var alpha = softplus(alpha_prime_.var());
    const Var sigma_beta = softplus(beta_prime_.var());
    const Var diff = y - z0;
    const Var gamma = row_norm(diff);
    // ‖y − z₀‖ = r (σ_β + r)/(α + r)  ⇔  r² + a r − αγ = 0 with a = α + β̂ − γ = σ_β − γ.
    const Var a = sigma_beta - gamma;
    const Var q = alpha * gamma;
    const Var disc = sqrt(square(a) + 4.0 * q);  // > |a|, or = a > 0 at γ = 0: never 0
    const Tensor a_positive = gt(a.value(), Tensor::scalar(0.0));
    // The unselected branch still runs backward with a zero gradient; its denominator is replaced
    // by 1 there, so that 0 / (a + disc) can never become 0 / 0.
    const Var safe_denominator = where(a_positive, a + disc, Var(Tensor::ones(a.shape())));
    const Var r = where(a_positive, 2.0 * q / safe_denominator, 0.5 * (disc - a));
    const Var z = z0 + diff * unsqueeze((alpha + r) / (sigma_beta + r), 1);
    return {z, -radial_log_det(r, alpha, sigma_beta, dim_)};
}

std::string Radial::name() const { return fmt::format("Radial(D = {})", dim_); }

double Radial::alpha() const { return stable::softplus(alpha_prime_.value[0]); }
double Radial::beta_hat() const { return stable::softplus(beta_prime_.value[0]) - alpha(); }

}  // namespace tapeflow::flows
