#include "nn/linear.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/op.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/gemm.hpp"
#include "tensor/linalg.hpp"
#include "tensor/parallel.hpp"

namespace tapeflow::nn {

namespace {

using kernels::Transpose;

void check_linear_shapes(const Tensor& x, const Tensor& w, const Tensor* b, const char* op = "linear") {
    require_defined(x, op);
    require_defined(w, op);
    if (x.rank() != 2 || w.rank() != 2 || x.shape()[1] != w.shape()[0])
        throw std::invalid_argument(fmt::format(
            "{}: expected x [N, in] and weight [in, out], got x {} and weight {}", op, x.shape(), w.shape()));
    if (b && !(b->shape() == Shape{w.shape()[1]}))
        throw std::invalid_argument(
            fmt::format("{}: bias must have shape [{}] (the weight's out), got {}", op, w.shape()[1], b->shape()));
}

// x·W (+ b), then relu of it when `relu`. gemm writes the product, and one pass adds the bias and
// applies the ReLU in place: linear followed by relu took three passes over the output (a bias copy
// into every row, the accumulating gemm's store, relu's fresh output). ReLU as tapeflow::relu:
// x ≤ 0 → 0, so NaN stays NaN.
template <bool relu>
Tensor affine_value(const Tensor& x, const Tensor& w, const Tensor* b) {
    const std::size_t n = x.shape()[0], in = w.shape()[0], out = w.shape()[1];
    Tensor y(Shape{n, out});
    kernels::gemm(Transpose::no, Transpose::no, n, out, in, x.data(), in, w.data(), out, y.data(), out,
                  /*accumulate=*/false, num_threads());
    if (!relu && !b) return y;
    double* py = y.data();
    const double* pb = b ? b->data() : nullptr;
    for (std::size_t i = 0; i < n; ++i, py += out)
        for (std::size_t j = 0; j < out; ++j) {
            const double v = pb ? py[j] + pb[j] : py[j];
            py[j] = relu && v <= 0 ? 0.0 : v;
        }
    return y;
}

// y = x·W with upstream gradient dy:  dx = dy·Wᵀ,  dW = xᵀ·dy.
void product_grads(Backward& ctx, const Tensor& dy) {
    if (ctx.needs_grad(0)) ctx.accumulate(0, matmul_nt(dy, ctx.input(1)));
    if (ctx.needs_grad(1)) ctx.accumulate(1, matmul_tn(ctx.input(0), dy));
}

void backward_product(Backward& ctx) { product_grads(ctx, ctx.grad()); }

bool bias_needs_grad(const Backward& ctx) { return ctx.n_inputs() == 3 && ctx.needs_grad(2); }

// y = x·W + b: as above, and db = Σ_rows dy (the bias was broadcast over the rows).
void backward_affine(Backward& ctx) {
    backward_product(ctx);
    if (!bias_needs_grad(ctx)) return;
    const std::size_t rows = ctx.grad().shape()[0], out = ctx.grad().shape()[1];
    Tensor db = Tensor::zeros(Shape{out});
    const double* g = ctx.grad().data();
    double* pb = db.data();
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < out; ++j) pb[j] += g[i * out + j];
    ctx.accumulate(2, std::move(db));
}

// y = relu(p), p = x·W + b: dp = dy ⊙ [p > 0], read off the output (y > 0 exactly where p > 0, and a
// NaN p gives a NaN y, which is not > 0); db = Σ_rows dp in the same pass; dx and dW from dp as above.
void backward_affine_relu(Backward& ctx) {
    const std::size_t rows = ctx.grad().shape()[0], out = ctx.grad().shape()[1];
    Tensor dp(ctx.grad().shape());
    const double* g = ctx.grad().data();
    const double* y = ctx.value().data();
    double* pd = dp.data();
    if (bias_needs_grad(ctx)) {
        Tensor db = Tensor::zeros(Shape{out});
        double* pb = db.data();
        for (std::size_t i = 0; i < rows; ++i)
            for (std::size_t j = 0; j < out; ++j) {
                const std::size_t k = i * out + j;
                pd[k] = y[k] > 0 ? g[k] : 0.0;
                pb[j] += pd[k];
            }
        ctx.accumulate(2, std::move(db));
    } else {
        for (std::size_t k = 0; k < rows * out; ++k) pd[k] = y[k] > 0 ? g[k] : 0.0;
    }
    product_grads(ctx, dp);
}

// The tangent of y = x·W (+ b), the product rule: ẏ = ẋ·W + x·Ẇ (+ ḃ, broadcast over the rows); under
// the fused ReLU ẏ ⊙ [y > 0], the mask read off the output as in backward_affine_relu.
Tensor affine_tangent(const Forward& t, bool relu) {
    Tensor dy = Tensor::zeros(t.value().shape());
    if (t.has_tangent(0)) dy += matmul(t.tangent(0), t.input(1));
    if (t.has_tangent(1)) dy += matmul(t.input(0), t.tangent(1));
    if (t.n_inputs() == 3 && t.has_tangent(2)) dy += t.tangent(2);
    if (relu) {
        const double* y = t.value().data();
        double* pd = dy.data();
        for (std::size_t k = 0; k < dy.numel(); ++k)
            if (!(y[k] > 0)) pd[k] = 0.0;
    }
    return dy;
}

Tensor tangent_affine(const Forward& t) { return affine_tangent(t, false); }
Tensor tangent_affine_relu(const Forward& t) { return affine_tangent(t, true); }

}  // namespace

Var linear(const Var& x, const Var& weight, const Var& bias) {
    if (!bias.value().defined()) return linear(x, weight);
    check_linear_shapes(x.value(), weight.value(), &bias.value());
    return record("linear", affine_value<false>(x.value(), weight.value(), &bias.value()), {x, weight, bias},
                  backward_affine, tangent_affine);
}

Var linear(const Var& x, const Var& weight) {
    check_linear_shapes(x.value(), weight.value(), nullptr);
    return record("linear", affine_value<false>(x.value(), weight.value(), nullptr), {x, weight}, backward_product,
                  tangent_affine);
}

Var linear_relu(const Var& x, const Var& weight, const Var& bias) {
    if (!bias.value().defined()) {
        check_linear_shapes(x.value(), weight.value(), nullptr, "linear_relu");
        return record("linear_relu", affine_value<true>(x.value(), weight.value(), nullptr), {x, weight},
                      backward_affine_relu, tangent_affine_relu);
    }
    check_linear_shapes(x.value(), weight.value(), &bias.value(), "linear_relu");
    return record("linear_relu", affine_value<true>(x.value(), weight.value(), &bias.value()), {x, weight, bias},
                  backward_affine_relu, tangent_affine_relu);
}

Linear::Linear(std::size_t in_features, std::size_t out_features, Rng& rng, LinearOptions options)
    : in_(in_features), out_(out_features) {
    if (in_ == 0 || out_ == 0)
        throw std::invalid_argument(
            fmt::format("Linear({} → {}): both sizes must be positive", in_features, out_features));
    weight_ = &register_parameter("weight", initialize(options.init, Shape{in_, out_}, in_, out_, rng));
    if (options.bias) bias_ = &register_parameter("bias", initialize(options.bias_init, Shape{out_}, in_, out_, rng));
}

std::string Linear::name() const {
    return bias_ ? fmt::format("Linear({} → {})", in_, out_) : fmt::format("Linear({} → {}, bias=false)", in_, out_);
}

Var Linear::forward(const Var& x) { return apply(x, linear); }

Var Linear::forward_relu(const Var& x) { return apply(x, linear_relu); }

Var Linear::apply(const Var& x, Var (*op)(const Var&, const Var&, const Var&)) {
    const Shape& s = x.shape();
    if (s.rank() == 0)
        throw std::invalid_argument(fmt::format("{}: expected an input of shape [..., {}], got a scalar", name(), in_));
    if (s[s.rank() - 1] != in_)
        throw std::invalid_argument(fmt::format("{}: input has {} features, expected {}; input shape {}", name(),
                                                s[s.rank() - 1], in_, s));
    const Var w = weight_->var();
    const Var b = bias_ ? bias_->var() : Var();
    if (s.rank() == 2) return op(x, w, b);
    // Any other rank: fold the leading axes into rows, and unfold them afterwards.
    Shape out_shape = s;
    out_shape[s.rank() - 1] = out_;
    const Var rows = reshape(x, Shape{x.numel() / in_, in_});
    return reshape(op(rows, w, b), out_shape);
}

}  // namespace tapeflow::nn
