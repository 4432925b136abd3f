#include "flows/flow.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"

namespace tapeflow::flows {

Flow::Flow(std::unique_ptr<Distribution> base, std::vector<std::unique_ptr<Bijector>> layers) {
    if (!base) throw std::invalid_argument("Flow: the base distribution is null");
    base_ = &register_module("base", std::move(base));
    for (auto& layer : layers) add(std::move(layer));
}

Flow& Flow::add(std::unique_ptr<Bijector> layer) {
    const std::size_t k = layers_.size();
    if (!layer) throw std::invalid_argument(fmt::format("Flow: layer {} is null", k));
    if (layer->dim() != 0 && layer->dim() != dim())
        throw std::invalid_argument(fmt::format("Flow: layer {} ({}) acts on D = {}, but the base distribution ({}) has D = {}",
                                                k, layer->name(), layer->dim(), base_->name(), dim()));
    layers_.push_back(&register_module(fmt::format("layers.{}", k), std::move(layer)));
    return *this;
}

Transformed Flow::forward(const Var& z) {
    require_batch(z, dim(), "Flow::forward");
    return compose(z, layers_.size(), [this](std::size_t k, const Var& v) { return layers_[k]->forward(v); });
}

Transformed Flow::inverse(const Var& x) {
    require_batch(x, dim(), "Flow::inverse");
    const std::size_t last = layers_.size() - 1;
    return compose(x, layers_.size(), [&](std::size_t k, const Var& v) { return layers_[last - k]->inverse(v); });
}

Var Flow::log_prob(const Var& x) {
    require_batch(x, dim(), "Flow::log_prob");
    return pushforward_log_prob(*this, *base_, x);
}

Tensor Flow::sample(std::size_t n, Rng& rng) {
    if (n == 0) throw std::invalid_argument("Flow::sample: the number of samples n must be at least 1");
    NoGrad no_grad;
    return forward(base_->sample(n, rng)).value.value();
}

FlowSample Flow::sample_and_log_prob(std::size_t n, Rng& rng) {
    if (n == 0) throw std::invalid_argument("Flow::sample_and_log_prob: the number of samples n must be at least 1");
    const Var z = base_->sample(n, rng);
    const Var log_pz = base_->log_prob(z);
    const Transformed out = forward(z);
    return {out.value, log_pz - out.log_abs_det_jacobian};
}

Bijector& Flow::layer(std::size_t k) {
    if (k >= layers_.size())
        throw std::invalid_argument(fmt::format("Flow::layer: index {} is out of range for a flow of {} layers", k, layers_.size()));
    return *layers_[k];
}

Var pushforward_log_prob(Bijector& b, Distribution& base, const Var& x) {
    require_batch(x, base.dim(), "pushforward_log_prob");
    const Transformed back = b.inverse(x);
    return base.log_prob(back.value) + back.log_abs_det_jacobian;
}

std::string Flow::name() const { return fmt::format("Flow({}, {} layers)", base_->name(), layers_.size()); }

}  // namespace tapeflow::flows
