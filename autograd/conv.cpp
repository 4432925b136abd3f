#include "autograd/conv.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/shape_ops.hpp"
#include "tensor/conv.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow {

namespace {

// y = W ⋆ x (+ b):  dx = dy ⋆ w̃ (the adjoint convolution),  dW = dY · X̂ᵀ,  db = Σ_{n,i,j} dy
// (tensor/conv.hpp).
void backward_conv2d(Tape& t, const Node& n) {
    const Tensor& x = t.value(n.inputs[0]);
    const Tensor& w = t.value(n.inputs[1]);
    if (t.node(n.inputs[0]).requires_grad) t.accumulate(n.inputs[0], conv2d_input_grad(n.grad, w));
    if (t.node(n.inputs[1]).requires_grad) t.accumulate(n.inputs[1], conv2d_weight_grad(x, n.grad, w.shape()[2]));
    if (n.n_inputs == 3 && t.node(n.inputs[2]).requires_grad) t.accumulate(n.inputs[2], conv2d_bias_grad(n.grad));
}

}  // namespace

Var conv2d(const Var& x, const Var& weight, CallSite site) {
    return record("conv2d", tapeflow::conv2d(x.value(), weight.value()), {x, weight}, backward_conv2d, {}, site);
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, CallSite site) {
    if (!bias.value().defined()) return conv2d(x, weight, site);
    return record("conv2d", tapeflow::conv2d(x.value(), weight.value(), bias.value()), {x, weight, bias},
                  backward_conv2d, {}, site);
}

Var pad2d(const Var& x, std::size_t top, std::size_t bottom, std::size_t left, std::size_t right, CallSite site) {
    return record("pad2d", tapeflow::pad2d(x.value(), top, bottom, left, right), {x}, [](Tape& t, const Node& n) {
        const Shape& in = t.value(n.inputs[0]).shape();
        const auto top = static_cast<std::size_t>(n.attributes.scalar);
        const auto left = static_cast<std::size_t>(n.attributes.scalar2);
        t.accumulate(n.inputs[0], crop2d(n.grad, top, left, in[2], in[3]));
    }, {.scalar = static_cast<double>(top), .scalar2 = static_cast<double>(left)}, site);
}

Var per_channel(const Var& v, CallSite site) {
    require_defined(v.value(), "per_channel");
    if (v.shape().rank() != 1)
        throw std::invalid_argument(
            fmt::format("per_channel: expected a vector [C] of per-channel values, got shape {}", v.shape()));
    return reshape(v, Shape{v.numel(), 1, 1}, site);
}

Var sum_per_channel(const Var& x, CallSite site) {
    return record("sum_per_channel", tapeflow::sum_per_channel(x.value()), {x}, [](Tape& t, const Node& n) {
        const Shape& in = t.value(n.inputs[0]).shape();
        t.accumulate(n.inputs[0], broadcast_to(n.grad.reshape(Shape{in[1], 1, 1}), in));
    }, {}, site);
}

}  // namespace tapeflow
