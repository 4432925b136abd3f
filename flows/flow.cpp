#include "flows/flow.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"

namespace tapeflow::flows {

namespace {

// Moves `total` through one more layer: log-dets add along the chain (docs/theory.md §1).
void accumulate(Transformed& total, const Transformed& step) {
    total.value = step.value;
    total.log_abs_det_jacobian = total.log_abs_det_jacobian.value().defined()
                                     ? total.log_abs_det_jacobian + step.log_abs_det_jacobian
                                     : step.log_abs_det_jacobian;
}

// An empty stack is the identity, with log-det 0.
Transformed finish(Transformed total, std::size_t n) {
    if (!total.log_abs_det_jacobian.value().defined()) total.log_abs_det_jacobian = Var(Tensor::zeros(Shape{n}));
    return total;
}

}  // namespace

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
    Transformed out{z, Var()};
    for (Bijector* f : layers_) accumulate(out, f->forward(out.value));
    return finish(out, z.shape()[0]);
}

Transformed Flow::inverse(const Var& x) {
    require_batch(x, dim(), "Flow::inverse");
    Transformed out{x, Var()};
    for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) accumulate(out, (*it)->inverse(out.value));
    return finish(out, x.shape()[0]);
}

Var Flow::log_prob(const Var& x) {
    require_batch(x, dim(), "Flow::log_prob");
    const Transformed back = inverse(x);
    return base_->log_prob(back.value) + back.log_abs_det_jacobian;
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

std::string Flow::name() const { return fmt::format("Flow({}, {} layers)", base_->name(), layers_.size()); }

}  // namespace tapeflow::flows
