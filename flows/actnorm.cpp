#include "flows/actnorm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

std::size_t checked_dim(std::size_t dim) {
    if (dim == 0) throw std::invalid_argument("ActNorm: the dimension D must be at least 1");
    return dim;
}

// Σ_d log_s_d, the same for every sample, as a per-sample [N] log-det.
Var per_sample(const Var& total, std::size_t n) { return broadcast_to(total, Shape{n}); }

}  // namespace

ActNorm::ActNorm(std::size_t dim)
    : dim_(checked_dim(dim)),
      loc_(register_parameter("loc", Tensor::zeros(Shape{dim}))),
      log_scale_(register_parameter("log_scale", Tensor::zeros(Shape{dim}))),
      initialized_(register_buffer("initialized", Tensor::zeros(Shape{1}))) {}

void ActNorm::initialize(const Tensor& x) {
    require_batch(Var(x), dim_, "ActNorm::initialize");
    const std::size_t n = x.shape()[0];
    if (n < 2)
        throw std::invalid_argument(fmt::format(
            "ActNorm: the data-dependent initialization needs at least 2 samples, got N = {} (one has no spread to measure)",
            n));
    // Computed in full before anything is written, so a throw leaves the layer untouched.
    Tensor loc(Shape{dim_}), log_scale(Shape{dim_});
    for (std::size_t d = 0; d < dim_; ++d) {
        double mean = 0;
        for (std::size_t i = 0; i < n; ++i) mean += x[i * dim_ + d];
        mean /= static_cast<double>(n);
        double var = 0;  // two passes: no cancellation of E[x²] − E[x]²
        for (std::size_t i = 0; i < n; ++i) var += (x[i * dim_ + d] - mean) * (x[i * dim_ + d] - mean);
        var /= static_cast<double>(n);
        if (!std::isfinite(mean) || !std::isfinite(var))
            throw std::invalid_argument(fmt::format(
                "ActNorm: the data-dependent initialization met a non-finite value in dimension {} of the batch", d));
        loc[d] = mean;
        log_scale[d] = var > 0 ? 0.5 * std::log(var) : 0.0;
    }
    // Written in place: the parameters keep their storage (anything holding them sees the new values).
    std::copy_n(loc.data(), dim_, loc_.value.data());
    std::copy_n(log_scale.data(), dim_, log_scale_.value.data());
    set_initialized();
}

Transformed ActNorm::forward(const Var& z) {
    require_batch(z, dim_, "ActNorm::forward");
    const Var log_scale = log_scale_.var();
    return {z * exp(log_scale) + loc_.var(), per_sample(sum(log_scale), z.shape()[0])};
}

Transformed ActNorm::inverse(const Var& x) {
    require_batch(x, dim_, "ActNorm::inverse");
    if (training() && !initialized()) initialize(x.value());
    const Var log_scale = log_scale_.var();
    return {(x - loc_.var()) * exp(-log_scale), per_sample(-sum(log_scale), x.shape()[0])};
}

std::string ActNorm::name() const { return fmt::format("ActNorm(D = {})", dim_); }

}  // namespace tapeflow::flows
