#include "flows/coupling.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "nn/mlp.hpp"

namespace tapeflow::flows {

namespace {

void require_parity(std::size_t parity, std::string_view who) {
    if (parity > 1) throw std::invalid_argument(fmt::format("{}: parity must be 0 or 1, got {}", who, parity));
}

Tensor checked_mask(Tensor mask, std::string_view who) {
    require_mask(mask, who);
    return mask.clone();  // our own copy: the caller's tensor may change later
}

Tensor complement_of(const Tensor& mask) {
    Tensor c(mask.shape());
    for (std::size_t j = 0; j < mask.numel(); ++j) c[j] = 1 - mask[j];
    return c;
}

std::unique_ptr<nn::Layer> checked_conditioner(std::unique_ptr<nn::Layer> conditioner, std::size_t dim,
                                               std::size_t context_dim) {
    if (!conditioner) throw std::invalid_argument("AffineCoupling: the conditioner is null");
    if (const auto* mlp = dynamic_cast<const nn::MLP*>(conditioner.get())) {
        const auto& sizes = mlp->sizes();
        if (sizes.front() != dim + context_dim || sizes.back() != 2 * dim)
            throw std::invalid_argument(fmt::format(
                "AffineCoupling: the conditioner must map {} = {} inputs to 2D = {} outputs (s and t), but it is {}",
                context_dim ? fmt::format("D + C = {} + {}", dim, context_dim) : fmt::format("D"), dim + context_dim,
                2 * dim, mlp->name()));
    }
    return conditioner;
}

}  // namespace

Tensor alternating_mask(std::size_t dim, std::size_t parity) {
    require_parity(parity, "alternating_mask");
    if (dim < 2)
        throw std::invalid_argument(
            fmt::format("alternating_mask: needs D ≥ 2 coordinates to alternate, got D = {}", dim));
    Tensor mask(Shape{dim});
    for (std::size_t j = 0; j < dim; ++j) mask[j] = (j + parity) % 2 == 0 ? 1.0 : 0.0;
    return mask;
}

Tensor checkerboard_mask(std::size_t height, std::size_t width, std::size_t parity) {
    require_parity(parity, "checkerboard_mask");
    if (height * width < 2)
        throw std::invalid_argument(fmt::format(
            "checkerboard_mask: an image of {} × {} has fewer than 2 pixels, nothing to alternate", height, width));
    Tensor mask(Shape{height * width});
    for (std::size_t r = 0; r < height; ++r)
        for (std::size_t c = 0; c < width; ++c) mask[r * width + c] = (r + c + parity) % 2 == 1 ? 1.0 : 0.0;
    return mask;
}

void require_mask(const Tensor& mask, std::string_view who) {
    require_defined(mask, who);
    if (mask.rank() != 1 || mask.numel() == 0)
        throw std::invalid_argument(
            fmt::format("{}: the mask must be a non-empty vector [D], got shape {}", who, mask.shape()));
    std::size_t ones = 0;
    for (std::size_t j = 0; j < mask.numel(); ++j) {
        if (mask[j] != 0 && mask[j] != 1)
            throw std::invalid_argument(
                fmt::format("{}: mask entries must be 0 or 1, but entry {} is {}", who, j, mask[j]));
        ones += mask[j] == 1 ? 1 : 0;
    }
    if (ones == 0 || ones == mask.numel())
        throw std::invalid_argument(fmt::format(
            "{}: the mask must contain both 0s and 1s (it is all {}s): a coupling needs copied coordinates to "
            "condition on and updated ones to transform",
            who, ones == 0 ? 0 : 1));
}

std::unique_ptr<nn::Layer> make_coupling_conditioner(std::size_t dim, const std::vector<std::size_t>& hidden, Rng& rng,
                                                     nn::Activation activation, std::size_t context_dim) {
    if (dim == 0) throw std::invalid_argument("make_coupling_conditioner: the dimension D must be at least 1");
    std::vector<std::size_t> sizes{dim + context_dim};
    sizes.insert(sizes.end(), hidden.begin(), hidden.end());
    sizes.push_back(2 * dim);
    return std::make_unique<nn::MLP>(std::move(sizes), rng,
                                     nn::MLPOptions{.activation = activation, .zero_init_last = true});
}

AffineCoupling::AffineCoupling(Tensor mask, std::unique_ptr<nn::Layer> conditioner, std::size_t context_dim)
    : mask_(checked_mask(std::move(mask), "AffineCoupling")),
      complement_(complement_of(mask_)),
      dim_(mask_.numel()),
      context_dim_(context_dim),
      scale_(register_parameter("scale", Tensor::ones(Shape{dim_}))),
      conditioner_(register_module("conditioner", checked_conditioner(std::move(conditioner), dim_, context_dim))) {}

AffineCoupling::AffineCoupling(Tensor mask, const std::vector<std::size_t>& hidden, Rng& rng, nn::Activation activation,
                               std::size_t context_dim)
    : AffineCoupling(mask,
                     make_coupling_conditioner(checked_mask(mask, "AffineCoupling").numel(), hidden, rng, activation,
                                               context_dim),
                     context_dim) {}

AffineCoupling::ScaleShift AffineCoupling::scale_shift(const Var& u, const Var& context) {
    require_batch(u, dim_, "AffineCoupling");
    require_context(context, u.shape()[0], context_dim_, "AffineCoupling");
    // s and t see only the copied coordinates b ⊙ u (and the context).
    const Var copied = u * Var(mask_);
    const Var out = conditioner_(context_dim_ ? concat({copied, context}, 1) : copied);
    const std::size_t n = u.shape()[0];
    if (!(out.shape() == Shape{n, 2 * dim_}))
        throw std::invalid_argument(fmt::format(
            "AffineCoupling: the conditioner ({}) must return [N, 2D] = [{}, {}] (s_raw and t), got {}",
            conditioner_.name(), n, 2 * dim_, out.shape()));
    const std::vector<Var> raw = split(out, 1, {dim_, dim_});
    // s = scale ⊙ tanh(s_raw) bounds each log-scale by |scale| (docs/theory.md §5); multiplying by 1 − b
    // zeroes s and t on the copied coordinates, so one formula covers both kinds of coordinate.
    const Var complement(complement_);
    return {tanh(raw[0]) * (scale_.var() * complement), raw[1] * complement};
}

Transformed AffineCoupling::forward(const Var& z, const Var& context) {
    require_batch(z, dim_, "AffineCoupling::forward");
    const ScaleShift st = scale_shift(z, context);
    // x = (z − t) ⊙ exp(−s): on copied coordinates s = t = 0, so x = z there (docs/theory.md §5, inverse).
    return {(z - st.t) * exp(-st.s), -sum(st.s, 1)};
}

Transformed AffineCoupling::inverse(const Var& x, const Var& context) {
    require_batch(x, dim_, "AffineCoupling::inverse");
    const ScaleShift st = scale_shift(x, context);
    // z = x ⊙ exp(s) + t, log|det| = Σ_j (1 − b_j) s_j (RealNVP eqs. 6-9, masked form).
    return {x * exp(st.s) + st.t, sum(st.s, 1)};
}

std::string AffineCoupling::name() const {
    std::vector<int> b(mask_.numel());
    for (std::size_t j = 0; j < b.size(); ++j) b[j] = static_cast<int>(mask_[j]);
    const std::string context = context_dim_ ? fmt::format(", context C = {}", context_dim_) : "";
    if (b.size() <= 16) return fmt::format("AffineCoupling(D = {}, mask [{}]{})", dim_, fmt::join(b, ", "), context);
    std::size_t ones = 0;
    for (const int v : b) ones += static_cast<std::size_t>(v);
    return fmt::format("AffineCoupling(D = {}, mask with {} of {} copied{})", dim_, ones, dim_, context);
}

}  // namespace tapeflow::flows
