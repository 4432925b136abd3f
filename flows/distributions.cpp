#include "flows/distributions.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/bijector.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

namespace {

const double log_two_pi = std::log(2 * std::numbers::pi);

std::size_t require_dim(std::size_t dim, const char* who) {
    if (dim == 0) throw std::invalid_argument(fmt::format("{}: the dimension D must be at least 1", who));
    return dim;
}

}  // namespace

// ---- StandardNormal ------------------------------------------------------------------------------

StandardNormal::StandardNormal(std::size_t dim) : dim_(require_dim(dim, "StandardNormal")) {}

Var StandardNormal::log_prob(const Var& x) {
    require_batch(x, dim_, "StandardNormal::log_prob");
    return -0.5 * sum(square(x), 1) - 0.5 * static_cast<double>(dim_) * log_two_pi;
}

Var StandardNormal::sample(std::size_t n, Rng& rng) { return Var(randn(Shape{n, dim_}, rng)); }

std::string StandardNormal::name() const { return fmt::format("StandardNormal(D = {})", dim_); }

// ---- DiagNormal ----------------------------------------------------------------------------------

DiagNormal::DiagNormal(std::size_t dim)
    : dim_(require_dim(dim, "DiagNormal")),
      mean_(register_parameter("mean", Tensor::zeros(Shape{dim}))),
      log_std_(register_parameter("log_std", Tensor::zeros(Shape{dim}))) {}

Var DiagNormal::log_prob(const Var& x) {
    require_batch(x, dim_, "DiagNormal::log_prob");
    const Var log_std = log_std_.var();
    const Var u = (x - mean_.var()) * exp(-log_std);
    return -0.5 * sum(square(u), 1) - sum(log_std) - 0.5 * static_cast<double>(dim_) * log_two_pi;
}

Var DiagNormal::sample(std::size_t n, Rng& rng) {
    const Tensor eps = randn(Shape{n, dim_}, rng);
    return mean_.var() + exp(log_std_.var()) * Var(eps);
}

std::string DiagNormal::name() const { return fmt::format("DiagNormal(D = {})", dim_); }

// ---- Uniform -------------------------------------------------------------------------------------

Uniform::Uniform(std::size_t dim, double lo, double hi)
    : Uniform(Tensor::full(Shape{require_dim(dim, "Uniform")}, lo), Tensor::full(Shape{dim}, hi)) {}

Uniform::Uniform(const Tensor& lo, const Tensor& hi) : lo_(lo.clone()), hi_(hi.clone()), log_volume_(0) {
    require_defined(lo, "Uniform");
    require_defined(hi, "Uniform");
    if (lo.rank() != 1 || lo.numel() == 0 || !(lo.shape() == hi.shape()))
        throw std::invalid_argument(fmt::format(
            "Uniform: lo and hi must be non-empty vectors [D] of the same shape, got {} and {}", lo.shape(), hi.shape()));
    for (std::size_t d = 0; d < lo.numel(); ++d) {
        if (!std::isfinite(lo[d]) || !std::isfinite(hi[d]) || !(lo[d] < hi[d]))
            throw std::invalid_argument(fmt::format(
                "Uniform: needs finite bounds with lo < hi, got lo = {}, hi = {} in dimension {}", lo[d], hi[d], d));
        log_volume_ += std::log(hi[d] - lo[d]);
    }
}

Var Uniform::log_prob(const Var& x) {
    require_batch(x, dim(), "Uniform::log_prob");
    const std::size_t n = x.shape()[0], D = dim();
    Tensor value(Shape{n});
    const double* px = x.value().data();
    for (std::size_t i = 0; i < n; ++i) {
        bool inside = true, nan = false;
        for (std::size_t d = 0; d < D; ++d) {
            const double v = px[i * D + d];
            inside = inside && lo_[d] <= v && v <= hi_[d];
            nan = nan || std::isnan(v);
        }
        value[i] = nan ? std::numeric_limits<double>::quiet_NaN() : inside ? -log_volume_ : -std::numeric_limits<double>::infinity();
    }
    // d log p / dx = 0: the rule adds nothing, so x's gradient stays zero, and the tangent is zero.
    return record("uniform_log_prob", std::move(value), {x}, [](Backward&) {},
                  [](const Forward& t) { return Tensor::zeros(t.value().shape()); });
}

Var Uniform::sample(std::size_t n, Rng& rng) {
    Tensor x(Shape{n, dim()});
    const std::size_t D = dim();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t d = 0; d < D; ++d) x[i * D + d] = rng.uniform(lo_[d], hi_[d]);
    return Var(x);
}

std::string Uniform::name() const { return fmt::format("Uniform(D = {})", dim()); }

// ---- Logistic ------------------------------------------------------------------------------------

Logistic::Logistic(std::size_t dim, double loc, double scale)
    : dim_(require_dim(dim, "Logistic")), loc_(loc), scale_(scale) {
    if (!std::isfinite(loc) || !std::isfinite(scale) || !(scale > 0))
        throw std::invalid_argument(
            fmt::format("Logistic: needs a finite loc and a finite scale > 0, got loc = {}, scale = {}", loc, scale));
}

Var Logistic::log_prob(const Var& x) {
    require_batch(x, dim_, "Logistic::log_prob");
    const Var u = (x - loc_) / scale_;
    return sum(-u - 2.0 * softplus(-u), 1) - static_cast<double>(dim_) * std::log(scale_);
}

Var Logistic::sample(std::size_t n, Rng& rng) {
    Tensor x(Shape{n, dim_});
    for (double& v : x.span()) {
        double p = rng.uniform();
        while (p == 0.0) p = rng.uniform();  // [0, 1) → (0, 1): logit(0) = −inf
        v = loc_ + scale_ * (std::log(p) - std::log1p(-p));
    }
    return Var(x);
}

std::string Logistic::name() const { return fmt::format("Logistic(D = {}, loc = {}, scale = {})", dim_, loc_, scale_); }

}  // namespace tapeflow::flows
