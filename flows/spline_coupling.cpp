#include "flows/spline_coupling.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/coupling.hpp"
#include "nn/mlp.hpp"

namespace tapeflow::flows {

namespace {

Tensor checked_mask(const Tensor& mask, const SplineOptions& options) {
    require_mask(mask, "SplineCoupling");
    require_spline_options(options, "SplineCoupling");
    return mask.clone();  // our own copy: the caller's tensor may change later
}

std::vector<std::size_t> zeros_of(const Tensor& mask) {
    std::vector<std::size_t> out;
    for (std::size_t j = 0; j < mask.numel(); ++j)
        if (mask[j] == 0) out.push_back(j);
    return out;
}

Tensor placement_of(const std::vector<std::size_t>& transformed, std::size_t dim) {
    Tensor p = Tensor::zeros(Shape{transformed.size(), dim});
    for (std::size_t m = 0; m < transformed.size(); ++m) p[m * dim + transformed[m]] = 1;
    return p;
}

std::unique_ptr<nn::Layer> checked_conditioner(std::unique_ptr<nn::Layer> conditioner, std::size_t dim,
                                               std::size_t outputs, std::size_t context_dim) {
    if (!conditioner) throw std::invalid_argument("SplineCoupling: the conditioner is null");
    if (const auto* mlp = dynamic_cast<const nn::MLP*>(conditioner.get())) {
        const auto& sizes = mlp->sizes();
        if (sizes.front() != dim + context_dim || sizes.back() != outputs)
            throw std::invalid_argument(fmt::format(
                "SplineCoupling: the conditioner must map D + C = {} + {} inputs to M(3K − 1) = {} outputs (the raw "
                "spline parameters of the transformed coordinates), but it is {}",
                dim, context_dim, outputs, mlp->name()));
    }
    return conditioner;
}

}  // namespace

std::unique_ptr<nn::Layer> make_spline_conditioner(std::size_t dim, std::size_t transformed, std::size_t bins,
                                                   const std::vector<std::size_t>& hidden, Rng& rng,
                                                   nn::Activation activation, std::size_t context_dim) {
    if (dim == 0) throw std::invalid_argument("make_spline_conditioner: the dimension D must be at least 1");
    if (transformed == 0 || transformed > dim)
        throw std::invalid_argument(fmt::format(
            "make_spline_conditioner: the transformed coordinates M must lie in 1 … D = {}, got {}", dim, transformed));
    if (bins == 0) throw std::invalid_argument("make_spline_conditioner: the number of bins K must be at least 1, got 0");
    std::vector<std::size_t> sizes{dim + context_dim};
    sizes.insert(sizes.end(), hidden.begin(), hidden.end());
    sizes.push_back(transformed * spline_parameters_per_dim(bins));
    return std::make_unique<nn::MLP>(std::move(sizes), rng,
                                     nn::MLPOptions{.activation = activation, .zero_init_last = true});
}

SplineCoupling::SplineCoupling(Tensor mask, std::unique_ptr<nn::Layer> conditioner, SplineOptions options,
                               std::size_t context_dim)
    : mask_(checked_mask(mask, options)),
      transformed_(zeros_of(mask_)),
      placement_(placement_of(transformed_, mask_.numel())),
      dim_(mask_.numel()),
      context_dim_(context_dim),
      options_(options),
      conditioner_(register_module(
          "conditioner", checked_conditioner(std::move(conditioner), dim_,
                                             transformed_.size() * spline_parameters_per_dim(options.bins), context_dim))) {}

SplineCoupling::SplineCoupling(Tensor mask, const std::vector<std::size_t>& hidden, Rng& rng, SplineOptions options,
                               nn::Activation activation, std::size_t context_dim)
    : SplineCoupling(mask,
                     make_spline_conditioner(checked_mask(mask, options).numel(), zeros_of(mask).size(), options.bins,
                                             hidden, rng, activation, context_dim),
                     options, context_dim) {}

Var SplineCoupling::raw_parameters(const Var& u, const Var& context) {
    require_batch(u, dim_, "SplineCoupling");
    const std::size_t n = u.shape()[0], m = transformed_.size(), p = spline_parameters_per_dim(options_.bins);
    require_context(context, n, context_dim_, "SplineCoupling");
    // θ sees only the copied coordinates b ⊙ u (and the context), so b ⊙ x = b ⊙ z gives both
    // directions the same splines.
    const Var copied = u * Var(mask_);
    const Var out = conditioner_(context_dim_ ? concat({copied, context}, 1) : copied);
    if (!(out.shape() == Shape{n, m * p}))
        throw std::invalid_argument(fmt::format(
            "SplineCoupling: the conditioner ({}) must return [N, M(3K − 1)] = [{}, {}], got {}", conditioner_.name(),
            n, m * p, out.shape()));
    return reshape(out, Shape{n, m, p});
}

Transformed SplineCoupling::apply(const Var& u, const Var& context, bool inverse, const char* who) {
    require_batch(u, dim_, who);
    const Var raw = raw_parameters(u, context);
    const SplineValue g = rational_quadratic_spline(index_select(u, 1, transformed_), raw, options_, inverse);
    // Copied coordinates as they are, transformed ones put back in their columns by the one-hot rows.
    return {u * Var(mask_) + matmul(g.value, Var(placement_)), sum(g.log_derivative, 1)};
}

Transformed SplineCoupling::forward(const Var& z, const Var& context) {
    return apply(z, context, false, "SplineCoupling::forward");
}

Transformed SplineCoupling::inverse(const Var& x, const Var& context) {
    return apply(x, context, true, "SplineCoupling::inverse");
}

std::string SplineCoupling::name() const {
    std::vector<int> b(mask_.numel());
    for (std::size_t j = 0; j < b.size(); ++j) b[j] = static_cast<int>(mask_[j]);
    const std::string spline = fmt::format("K = {}, B = {:g}", options_.bins, options_.bound);
    const std::string context = context_dim_ ? fmt::format(", context C = {}", context_dim_) : "";
    if (b.size() <= 16)
        return fmt::format("SplineCoupling(D = {}, mask [{}], {}{})", dim_, fmt::join(b, ", "), spline, context);
    return fmt::format("SplineCoupling(D = {}, {} of {} copied, {}{})", dim_, dim_ - transformed_.size(), dim_, spline,
                       context);
}

}  // namespace tapeflow::flows
