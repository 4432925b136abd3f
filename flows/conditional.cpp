#include "flows/conditional.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

void require_unconditional(const ConditionalBijector& b, const char* which) {
    if (b.context_dim() != 0)
        throw std::invalid_argument(fmt::format("{}::{}: it takes a context of C = {} entries; call {}(value, context)",
                                                b.name(), which, b.context_dim(), which));
}

// A context c [C] or [1, C] as a row [1, C]; throws unless it has C entries, all finite.
Tensor context_row(const Tensor& c, std::size_t context_dim, const std::string& who) {
    require_defined(c, who);
    const bool vector = c.rank() == 1, row = c.rank() == 2 && c.shape()[0] == 1;
    if (!(vector || row) || c.numel() != context_dim)
        throw std::invalid_argument(
            fmt::format("{}: expects one context [{}] (or [1, {}]), got shape {}", who, context_dim, context_dim, c.shape()));
    if (!all_finite(c)) throw std::invalid_argument(fmt::format("{}: the context must be finite", who));
    return c.reshape(Shape{1, context_dim}).clone();
}

}  // namespace

Transformed ConditionalBijector::forward(const Var& z) {
    require_unconditional(*this, "forward");
    return forward(z, Var());
}

Transformed ConditionalBijector::inverse(const Var& x) {
    require_unconditional(*this, "inverse");
    return inverse(x, Var());
}

void require_context(const Var& context, std::size_t n, std::size_t context_dim, const std::string& who) {
    const bool defined = context.value().defined();
    if (context_dim == 0) {
        if (defined)
            throw std::invalid_argument(
                fmt::format("{}: takes no context, but got one of shape {}", who, context.shape()));
        return;
    }
    if (!defined) throw std::invalid_argument(fmt::format("{}: needs a context [N, {}], got none", who, context_dim));
    const Shape& s = context.shape();
    if (s.rank() != 2 || s[0] != n || s[1] != context_dim)
        throw std::invalid_argument(
            fmt::format("{}: expects a context [{}, {}] (one row per sample), got shape {}", who, n, context_dim, s));
}

AtContext::AtContext(ConditionalBijector& b, const Tensor& context)
    : b_(b), context_(context_row(context, b.context_dim(), "AtContext")) {
    if (b.context_dim() == 0) throw std::invalid_argument(fmt::format("AtContext: {} takes no context", b.name()));
}

Var AtContext::rows(std::size_t n) const {
    return broadcast_to(Var(context_), Shape{n, context_.shape()[1]});
}

Transformed AtContext::forward(const Var& z) {
    require_batch(z, dim(), "AtContext::forward");
    return b_.forward(z, rows(z.shape()[0]));
}

Transformed AtContext::inverse(const Var& x) {
    require_batch(x, dim(), "AtContext::inverse");
    return b_.inverse(x, rows(x.shape()[0]));
}

std::string AtContext::name() const {
    return fmt::format("{} at c = [{:.4g}]", b_.name(), fmt::join(context_.span(), ", "));
}

ConditionalFlow::ConditionalFlow(std::unique_ptr<Distribution> base, std::size_t context_dim,
                                 std::vector<std::unique_ptr<Bijector>> layers)
    : context_dim_(context_dim) {
    if (!base) throw std::invalid_argument("ConditionalFlow: the base distribution is null");
    if (context_dim == 0)
        throw std::invalid_argument("ConditionalFlow: context_dim must be at least 1 (without a context, use Flow)");
    base_ = &register_module("base", std::move(base));
    for (auto& layer : layers) add(std::move(layer));
}

ConditionalFlow& ConditionalFlow::add(std::unique_ptr<Bijector> layer) {
    const std::size_t k = layers_.size();
    if (!layer) throw std::invalid_argument(fmt::format("ConditionalFlow: layer {} is null", k));
    if (layer->dim() != 0 && layer->dim() != dim())
        throw std::invalid_argument(fmt::format("ConditionalFlow: layer {} ({}) acts on D = {}, but the base has D = {}",
                                                k, layer->name(), layer->dim(), dim()));
    if (const auto* c = dynamic_cast<const ConditionalBijector*>(layer.get()); c && c->context_dim() != context_dim_)
        throw std::invalid_argument(fmt::format("ConditionalFlow: layer {} ({}) takes a context of C = {}, the flow's has C = {}",
                                                k, layer->name(), c->context_dim(), context_dim_));
    layers_.push_back(&register_module(fmt::format("layers.{}", k), std::move(layer)));
    return *this;
}

Transformed ConditionalFlow::forward(const Var& z, const Var& context) {
    require_batch(z, dim(), "ConditionalFlow::forward");
    require_context(context, z.shape()[0], context_dim_, "ConditionalFlow::forward");
    return compose(z, layers_.size(), [&](std::size_t k, const Var& v) {
        auto* c = dynamic_cast<ConditionalBijector*>(layers_[k]);
        return c ? c->forward(v, context) : layers_[k]->forward(v);
    });
}

Transformed ConditionalFlow::inverse(const Var& x, const Var& context) {
    require_batch(x, dim(), "ConditionalFlow::inverse");
    require_context(context, x.shape()[0], context_dim_, "ConditionalFlow::inverse");
    const std::size_t last = layers_.size() - 1;
    return compose(x, layers_.size(), [&](std::size_t k, const Var& v) {
        Bijector* layer = layers_[last - k];
        auto* c = dynamic_cast<ConditionalBijector*>(layer);
        return c ? c->inverse(v, context) : layer->inverse(v);
    });
}

Var ConditionalFlow::log_prob(const Var& x, const Var& context) {
    const Transformed back = inverse(x, context);
    return base_->log_prob(back.value) + back.log_abs_det_jacobian;
}

Var ConditionalFlow::contexts_for(std::size_t n, const Tensor& context, const char* who) const {
    if (n == 0) throw std::invalid_argument(fmt::format("{}: the number of samples n must be at least 1", who));
    require_defined(context, who);
    if (context.rank() == 2 && context.shape()[0] == n && context.shape()[1] == context_dim_) return Var(context);
    return broadcast_to(Var(context_row(context, context_dim_, who)), Shape{n, context_dim_});
}

Tensor ConditionalFlow::sample(std::size_t n, const Tensor& context, Rng& rng) {
    const Var c = contexts_for(n, context, "ConditionalFlow::sample");
    NoGrad no_grad;
    return forward(base_->sample(n, rng), c).value.value();
}

FlowSample ConditionalFlow::sample_and_log_prob(std::size_t n, const Tensor& context, Rng& rng) {
    const Var c = contexts_for(n, context, "ConditionalFlow::sample_and_log_prob");
    const Var z = base_->sample(n, rng);
    const Var log_pz = base_->log_prob(z);
    const Transformed out = forward(z, c);
    return {out.value, log_pz - out.log_abs_det_jacobian};
}

Bijector& ConditionalFlow::layer(std::size_t k) {
    if (k >= layers_.size())
        throw std::invalid_argument(
            fmt::format("ConditionalFlow::layer: index {} is out of range for a flow of {} layers", k, layers_.size()));
    return *layers_[k];
}

std::string ConditionalFlow::name() const {
    return fmt::format("ConditionalFlow({}, C = {}, {} layers)", base_->name(), context_dim_, layers_.size());
}

}  // namespace tapeflow::flows
