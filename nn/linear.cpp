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

void check_linear_shapes(const Tensor& x, const Tensor& w, const Tensor* b) {
    require_defined(x, "linear");
    require_defined(w, "linear");
    if (x.rank() != 2 || w.rank() != 2 || x.shape()[1] != w.shape()[0])
        throw std::invalid_argument(fmt::format(
            "linear: expected x [N, in] and weight [in, out], got x {} and weight {}", x.shape(), w.shape()));
    if (b && !(b->shape() == Shape{w.shape()[1]}))
        throw std::invalid_argument(
            fmt::format("linear: bias must have shape [{}] (the weight's out), got {}", w.shape()[1], b->shape()));
}

// x·W (+ b): the bias is written into every row first and gemm accumulates the product onto it, so
// the output is allocated and written once.
Tensor affine_value(const Tensor& x, const Tensor& w, const Tensor* b) {
    const std::size_t n = x.shape()[0], in = w.shape()[0], out = w.shape()[1];
    Tensor y(Shape{n, out});
    if (b)
        for (std::size_t i = 0; i < n; ++i) std::copy_n(b->data(), out, y.data() + i * out);
    kernels::gemm(Transpose::no, Transpose::no, n, out, in, x.data(), in, w.data(), out, y.data(), out,
                  /*accumulate=*/b != nullptr, num_threads());
    return y;
}

// y = x·W:  dx = dy·Wᵀ,  dW = xᵀ·dy.
void backward_product(Backward& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    if (ctx.needs_grad(0)) ctx.accumulate(0, matmul_nt(ctx.grad(), w));
    if (ctx.needs_grad(1)) ctx.accumulate(1, matmul_tn(x, ctx.grad()));
}

// y = x·W + b: as above, and db = Σ_rows dy (the bias was broadcast over the rows).
void backward_affine(Backward& ctx) {
    backward_product(ctx);
    if (!ctx.needs_grad(2)) return;
    const std::size_t rows = ctx.grad().shape()[0], out = ctx.grad().shape()[1];
    Tensor db = Tensor::zeros(Shape{out});
    const double* g = ctx.grad().data();
    double* pb = db.data();
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < out; ++j) pb[j] += g[i * out + j];
    ctx.accumulate(2, std::move(db));
}

}  // namespace

Var linear(const Var& x, const Var& weight, const Var& bias) {
    if (!bias.value().defined()) return linear(x, weight);
    check_linear_shapes(x.value(), weight.value(), &bias.value());
    return record("linear", affine_value(x.value(), weight.value(), &bias.value()), {x, weight, bias},
                  backward_affine);
}

Var linear(const Var& x, const Var& weight) {
    check_linear_shapes(x.value(), weight.value(), nullptr);
    return record("linear", affine_value(x.value(), weight.value(), nullptr), {x, weight}, backward_product);
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

Var Linear::forward(const Var& x) {
    const Shape& s = x.shape();
    if (s.rank() == 0)
        throw std::invalid_argument(fmt::format("{}: expected an input of shape [..., {}], got a scalar", name(), in_));
    if (s[s.rank() - 1] != in_)
        throw std::invalid_argument(fmt::format("{}: input has {} features, expected {}; input shape {}", name(),
                                                s[s.rank() - 1], in_, s));
    const Var w = weight_->var();
    const Var b = bias_ ? bias_->var() : Var();
    if (s.rank() == 2) return linear(x, w, b);
    // Any other rank: fold the leading axes into rows, and unfold them afterwards.
    Shape out_shape = s;
    out_shape[s.rank() - 1] = out_;
    const Var rows = reshape(x, Shape{x.numel() / in_, in_});
    return reshape(linear(rows, w, b), out_shape);
}

}  // namespace tapeflow::nn
