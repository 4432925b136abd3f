#include "autograd/conv.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/op.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/conv.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow {

namespace {

// The convolution y = B(x, W) (+ b) is bilinear in (x, W), and its three backward products are linear
// maps of the upstream gradient g (tensor/conv.hpp):
//     dx = B_x*(g; W)   (conv2d_input_grad),   dW = B_W*(x; g)   (conv2d_weight_grad),   db = Σ_{n,i,j} g.
// Each is recorded by a Var twin below whose own backward follows from ⟨u, B_x*(g; W)⟩ = ⟨B(u, W), g⟩ and
// ⟨U, B_W*(x; g)⟩ = ⟨B(x, U), g⟩ (u of x's shape, U of W's): the twins and conv2d close under
// differentiation, so the convolution differentiates to any order (docs/theory.md §11). Every rule is
// generic over Tensor and Var (autograd/op.hpp), and every op has a tangent rule: a bilinear map's
// tangent is B(ẋ, W) + B(x, Ẇ).
Var input_grad(const Var& g, const Var& w);
Var weight_grad(const Var& x, const Var& g, std::size_t kernel);
Var bias_grad(const Var& g);
Tensor input_grad(const Tensor& g, const Tensor& w) { return conv2d_input_grad(g, w); }
Tensor weight_grad(const Tensor& x, const Tensor& g, std::size_t kernel) { return conv2d_weight_grad(x, g, kernel); }
Tensor bias_grad(const Tensor& g) { return conv2d_bias_grad(g); }

// The product rule over the two bilinear slots, each term only where a tangent is live.
template <class F>
Tensor bilinear_tangent(const Forward& t, F&& b) {
    if (!t.has_tangent(1)) return b(t.tangent(0), t.input(1));
    if (!t.has_tangent(0)) return b(t.input(0), t.tangent(1));
    return b(t.tangent(0), t.input(1)) + b(t.input(0), t.tangent(1));
}

// ḃ viewed per channel and broadcast over an image batch of shape `out`.
Tensor bias_tangent(const Tensor& db, const Shape& out) {
    return broadcast_to(db.reshape(Shape{db.numel(), 1, 1}), out);
}

// y = W ⋆ x (+ b):  dx = dy ⋆ w̃ (the adjoint convolution),  dW = dY · X̂ᵀ,  db = Σ_{n,i,j} dy.
template <class Ctx>
void backward_conv2d(Ctx& ctx) {
    const std::size_t k = ctx.input_shape(1)[2];
    if (ctx.needs_grad(0)) ctx.accumulate(0, input_grad(ctx.grad(), ctx.input(1)));
    if (ctx.needs_grad(1)) ctx.accumulate(1, weight_grad(ctx.input(0), ctx.grad(), k));
    if (ctx.n_inputs() == 3 && ctx.needs_grad(2)) ctx.accumulate(2, bias_grad(ctx.grad()));
}

Tensor tangent_conv2d(const Forward& t) {
    Tensor y = bilinear_tangent(t, [](const Tensor& x, const Tensor& w) { return tapeflow::conv2d(x, w); });
    if (t.n_inputs() == 3 && t.has_tangent(2)) y = y + bias_tangent(t.tangent(2), t.value().shape());
    return y;
}

// dx = B_x*(g; W):  d/dg = B(u, W) = conv2d(u, W),  d/dW = B_W*(u; g).
Var input_grad(const Var& g, const Var& w) {
    return record("conv2d_input_grad", conv2d_input_grad(g.value(), w.value()), {g, w}, [](auto& ctx) {
        const std::size_t k = ctx.input_shape(1)[2];
        if (ctx.needs_grad(0)) ctx.accumulate(0, conv2d(ctx.grad(), ctx.input(1)));
        if (ctx.needs_grad(1)) ctx.accumulate(1, weight_grad(ctx.grad(), ctx.input(0), k));
    }, [](const Forward& t) { return bilinear_tangent(t, [](const Tensor& g, const Tensor& w) { return input_grad(g, w); }); });
}

// dW = B_W*(x; g):  d/dx = B_x*(g; U),  d/dg = B(x, U) = conv2d(x, U).
Var weight_grad(const Var& x, const Var& g, std::size_t kernel) {
    return record("conv2d_weight_grad", conv2d_weight_grad(x.value(), g.value(), kernel), {x, g}, [](auto& ctx) {
        if (ctx.needs_grad(0)) ctx.accumulate(0, input_grad(ctx.input(1), ctx.grad()));
        if (ctx.needs_grad(1)) ctx.accumulate(1, conv2d(ctx.input(0), ctx.grad()));
    }, [kernel](const Forward& t) {
        return bilinear_tangent(t, [kernel](const Tensor& x, const Tensor& g) { return weight_grad(x, g, kernel); });
    });
}

// db = Σ_{n,i,j} g: its transpose broadcasts a [C] vector over the batch.
Var bias_grad(const Var& g) {
    return record("conv2d_bias_grad", conv2d_bias_grad(g.value()), {g}, [](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        ctx.accumulate(0, broadcast_to(reshape(ctx.grad(), Shape{in[1], 1, 1}), in));
    }, [](const Forward& t) { return bias_grad(t.tangent(0)); });
}

// The window of a padded batch (pad2d's adjoint), recorded: its own adjoint is pad2d again.
Var crop(const Var& x, std::size_t top, std::size_t left, std::size_t height, std::size_t width) {
    const Shape& in = x.shape();
    const std::size_t bottom = in[2] - top - height, right = in[3] - left - width;
    return record("crop2d", crop2d(x.value(), top, left, height, width), {x},
                  [top, bottom, left, right](auto& ctx) { ctx.accumulate(0, pad2d(ctx.grad(), top, bottom, left, right)); },
                  [top, left, height, width](const Forward& t) { return crop2d(t.tangent(0), top, left, height, width); });
}
Tensor crop(const Tensor& x, std::size_t top, std::size_t left, std::size_t height, std::size_t width) {
    return crop2d(x, top, left, height, width);
}

}  // namespace

Var conv2d(const Var& x, const Var& weight, CallSite site) {
    return record("conv2d", tapeflow::conv2d(x.value(), weight.value()), {x, weight},
                  [](auto& ctx) { backward_conv2d(ctx); }, tangent_conv2d, site);
}

Var conv2d(const Var& x, const Var& weight, const Var& bias, CallSite site) {
    if (!bias.value().defined()) return conv2d(x, weight, site);
    return record("conv2d", tapeflow::conv2d(x.value(), weight.value(), bias.value()), {x, weight, bias},
                  [](auto& ctx) { backward_conv2d(ctx); }, tangent_conv2d, site);
}

Var pad2d(const Var& x, std::size_t top, std::size_t bottom, std::size_t left, std::size_t right, CallSite site) {
    return record("pad2d", tapeflow::pad2d(x.value(), top, bottom, left, right), {x}, [top, left](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        ctx.accumulate(0, crop(ctx.grad(), top, left, in[2], in[3]));
    }, [top, bottom, left, right](const Forward& t) { return tapeflow::pad2d(t.tangent(0), top, bottom, left, right); },
                  site);
}

Var per_channel(const Var& v, CallSite site) {
    require_defined(v.value(), "per_channel");
    if (v.shape().rank() != 1)
        throw std::invalid_argument(
            fmt::format("per_channel: expected a vector [C] of per-channel values, got shape {}", v.shape()));
    return reshape(v, Shape{v.numel(), 1, 1}, site);
}

Var sum_per_channel(const Var& x, CallSite site) {
    return record("sum_per_channel", tapeflow::sum_per_channel(x.value()), {x}, [](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        ctx.accumulate(0, broadcast_to(reshape(ctx.grad(), Shape{in[1], 1, 1}), in));
    }, [](const Forward& t) { return tapeflow::sum_per_channel(t.tangent(0)); }, site);
}

}  // namespace tapeflow
