#include "flows/elementwise.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

const Tensor& require_vector_pair(const Tensor& loc, const Tensor& log_scale) {
    require_defined(loc, "Affine");
    require_defined(log_scale, "Affine");
    if (loc.rank() != 1 || loc.numel() == 0 || !(loc.shape() == log_scale.shape()))
        throw std::invalid_argument(fmt::format(
            "Affine: loc and log_scale must be non-empty vectors [D] of the same shape, got {} and {}", loc.shape(),
            log_scale.shape()));
    return loc;
}

// Σ_d log σ_d, the same for every sample, as a per-sample [N] log-det.
Var per_sample(const Var& total, std::size_t n) { return broadcast_to(total, Shape{n}); }

}  // namespace

Affine::Affine(std::size_t dim) : Affine(Tensor::zeros(Shape{dim}), Tensor::zeros(Shape{dim})) {}

Affine::Affine(const Tensor& loc, const Tensor& log_scale)
    : dim_(require_vector_pair(loc, log_scale).numel()),
      loc_(register_parameter("loc", loc.clone())),
      log_scale_(register_parameter("log_scale", log_scale.clone())) {}

Transformed Affine::forward(const Var& z) {
    require_batch(z, dim_, "Affine::forward");
    const Var log_scale = log_scale_.var();
    return {loc_.var() + exp(log_scale) * z, per_sample(sum(log_scale), z.shape()[0])};
}

Transformed Affine::inverse(const Var& x) {
    require_batch(x, dim_, "Affine::inverse");
    const Var log_scale = log_scale_.var();
    return {(x - loc_.var()) * exp(-log_scale), per_sample(-sum(log_scale), x.shape()[0])};
}

std::string Affine::name() const { return fmt::format("Affine(D = {})", dim_); }

}  // namespace tapeflow::flows
