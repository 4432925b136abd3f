#include "flows/batchnorm.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

std::size_t checked_dim(std::size_t dim) {
    if (dim == 0) throw std::invalid_argument("BatchNorm: the dimension D must be at least 1");
    return dim;
}

BatchNormOptions checked(BatchNormOptions o) {
    if (!(o.momentum >= 0 && o.momentum <= 1))
        throw std::invalid_argument(fmt::format("BatchNorm: momentum must be in [0, 1], got {}", o.momentum));
    if (!(o.eps > 0 && std::isfinite(o.eps)))
        throw std::invalid_argument(fmt::format("BatchNorm: eps must be finite and > 0, got {}", o.eps));
    return o;
}

}  // namespace

BatchNorm::BatchNorm(std::size_t dim, BatchNormOptions options)
    : dim_(checked_dim(dim)),
      options_(checked(options)),
      running_mean_(register_buffer("running_mean", Tensor::zeros(Shape{dim}))),
      running_var_(register_buffer("running_var", Tensor::ones(Shape{dim}))) {
    if (options_.affine) {
        log_gamma_ = &register_parameter("log_gamma", Tensor::zeros(Shape{dim}));
        beta_ = &register_parameter("beta", Tensor::zeros(Shape{dim}));
    }
}

Transformed BatchNorm::inverse(const Var& x) {
    require_batch(x, dim_, "BatchNorm::inverse");
    const std::size_t n = x.shape()[0];
    Var mu, var;
    if (training()) {
        if (n < 2)
            throw std::invalid_argument(fmt::format(
                "BatchNorm::inverse: batch statistics in training mode need at least 2 samples, got N = {} "
                "(call eval() to use the running averages)",
                n));
        mu = mean(x, 0);
        var = mean(square(x - mu), 0);  // population variance, recorded: gradients flow through μ̃ and σ̃²
        const double m = options_.momentum, unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
        for (std::size_t d = 0; d < dim_; ++d) {
            running_mean_[d] = (1 - m) * running_mean_[d] + m * mu.value()[d];
            running_var_[d] = (1 - m) * running_var_[d] + m * var.value()[d] * unbiased;
        }
    } else {
        mu = Var(running_mean_.clone());  // copies: a later training step must not change this pass's values
        var = Var(running_var_.clone());
    }
    const Var var_eps = var + options_.eps;
    Var z = (x - mu) / sqrt(var_eps);
    Var log_det = -0.5 * log(var_eps);  // [D], RealNVP Sec. 3.7
    if (options_.affine) {
        const Var log_gamma = log_gamma_->var();
        z = z * exp(log_gamma) + beta_->var();
        log_det = log_det + log_gamma;
    }
    return {z, broadcast_to(sum(log_det), Shape{n})};
}

Transformed BatchNorm::forward(const Var& z) {
    require_batch(z, dim_, "BatchNorm::forward");
    const Var var_eps = Var(running_var_.clone()) + options_.eps;
    Var u = z;
    Var log_det = 0.5 * log(var_eps);  // −(−½ log(σ² + ε))
    if (options_.affine) {
        const Var log_gamma = log_gamma_->var();
        u = (z - beta_->var()) * exp(-log_gamma);
        log_det = log_det - log_gamma;
    }
    return {u * sqrt(var_eps) + Var(running_mean_.clone()), broadcast_to(sum(log_det), Shape{z.shape()[0]})};
}

std::string BatchNorm::name() const {
    return fmt::format("BatchNorm(D = {}{})", dim_, options_.affine ? "" : ", affine=false");
}

}  // namespace tapeflow::flows
