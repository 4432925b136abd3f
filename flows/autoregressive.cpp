#include "flows/autoregressive.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

std::unique_ptr<MADE> make_made(std::size_t dim, Rng& rng, const AutoregressiveOptions& o) {
    if (dim == 0) throw std::invalid_argument("AffineAutoregressive: the dimension D must be at least 1");
    return std::make_unique<MADE>(
        dim, rng, MADEOptions{.hidden = o.hidden, .params_per_dim = 2, .context_dim = o.context_dim, .activation = o.activation});
}

}  // namespace

AffineAutoregressive::AffineAutoregressive(Kind kind, std::size_t dim, Rng& rng, AutoregressiveOptions options)
    : kind_(kind),
      scale_(register_parameter("scale", dim == 0 ? Tensor() : Tensor::ones(Shape{dim}))),
      made_(register_module("made", make_made(dim, rng, options))) {}

AffineAutoregressive::ShiftLogScale AffineAutoregressive::shift_log_scale(const Var& u, const Var& context) {
    const std::size_t d = dim();
    const Var out = made_.forward(u, context);
    return {narrow(out, 1, 0, d), scale_.var() * tanh(narrow(out, 1, d, d))};
}

Transformed AffineAutoregressive::one_pass(const Var& u, const Var& context, bool to_latent) {
    const ShiftLogScale p = shift_log_scale(u, context);
    if (to_latent) return {(u - p.mu) * exp(-p.alpha), -sum(p.alpha, 1)};  // MAF's inverse
    return {u * exp(p.alpha) + p.mu, sum(p.alpha, 1)};                     // IAF's forward
}

Transformed AffineAutoregressive::sequential(const Var& v, const Var& context, bool to_latent) {
    // After pass k the coordinates 0 … k of `u` are exact (coordinate k's μ, α read only u_{<k},
    // exact since pass k − 1), so D passes solve the triangular system; the last pass's α is exact
    // for every coordinate and gives the log-det.
    Var u = Var(Tensor::zeros(v.shape()));
    ShiftLogScale p;
    for (std::size_t k = 0; k < dim(); ++k) {
        p = shift_log_scale(u, context);
        u = to_latent ? (v - p.mu) * exp(-p.alpha)  // IAF's inverse: z from x
                      : v * exp(p.alpha) + p.mu;    // MAF's forward: x from z
    }
    return {u, to_latent ? -sum(p.alpha, 1) : sum(p.alpha, 1)};
}

Transformed AffineAutoregressive::forward(const Var& z, const Var& context) {
    require_batch(z, dim(), fmt::format("{}::forward", name()));
    require_context(context, z.shape()[0], context_dim(), fmt::format("{}::forward", name()));
    return kind_ == Kind::maf ? sequential(z, context, false) : one_pass(z, context, false);
}

Transformed AffineAutoregressive::inverse(const Var& x, const Var& context) {
    require_batch(x, dim(), fmt::format("{}::inverse", name()));
    require_context(context, x.shape()[0], context_dim(), fmt::format("{}::inverse", name()));
    return kind_ == Kind::maf ? one_pass(x, context, true) : sequential(x, context, true);
}

std::string AffineAutoregressive::name() const {
    return fmt::format("{}(D = {}, {})", kind_ == Kind::maf ? "MAF" : "IAF", dim(), made_.name());
}

}  // namespace tapeflow::flows
