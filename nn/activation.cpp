#include "nn/activation.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/op.hpp"
#include "tensor/broadcast.hpp"
#include "tensor/stable.hpp"

namespace tapeflow::nn {

namespace {

using detail::map_binary;
using detail::map_ternary;
using detail::map_unary;

void require_finite(double value, const char* what, const char* op) {
    if (!std::isfinite(value)) throw std::invalid_argument(fmt::format("{}: {} must be finite, got {}", op, what, value));
}

}  // namespace

// d elu = (x > 0 ? 1 : α·eˣ)·dx. On the negative branch α·eˣ = out + α, so the backward reuses the
// output instead of evaluating a second exponential.
Var elu(const Var& x, double alpha) {
    require_finite(alpha, "alpha", "elu");
    require_defined(x.value(), "elu");
    Tensor value = map_unary(x.value(), [alpha](double v) { return v > 0 ? v : alpha * std::expm1(v); });
    return record("elu", std::move(value), {x}, [alpha](Backward& ctx) {
        ctx.accumulate(0, map_ternary(ctx.grad(), ctx.input(0), ctx.value(),
                                              [alpha](double g, double v, double y) { return v > 0 ? g : g * (y + alpha); },
                                              "elu"));
    },
                  [alpha](const Forward& t) {
                      return map_ternary(t.tangent(0), t.input(0), t.value(),
                                         [alpha](double dx, double v, double y) { return v > 0 ? dx : dx * (y + alpha); },
                                         "elu");
                  });
}

// d(x·σ(x)) = (σ(x) + x·σ(x)(1 − σ(x)))·dx = σ(x)·(1 + x·(1 − σ(x)))·dx.
Var silu(const Var& x) {
    require_defined(x.value(), "silu");
    Tensor value = map_unary(x.value(), [](double v) { return v * stable::sigmoid(v); });
    return record("silu", std::move(value), {x}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double v) {
            const double s = stable::sigmoid(v);
            return g * s * (1 + v * (1 - s));
        }, "silu"));
    },
                  [](const Forward& t) {
                      return map_binary(t.tangent(0), t.input(0), [](double dx, double v) {
                          const double s = stable::sigmoid(v);
                          return dx * s * (1 + v * (1 - s));
                      }, "silu");
                  });
}

LeakyReLU::LeakyReLU(double negative_slope) : negative_slope_(negative_slope) {
    require_finite(negative_slope, "negative_slope", "LeakyReLU");
}

std::string LeakyReLU::name() const { return fmt::format("LeakyReLU(negative_slope={:g})", negative_slope_); }

ELU::ELU(double alpha) : alpha_(alpha) { require_finite(alpha, "alpha", "ELU"); }

std::string ELU::name() const { return fmt::format("ELU(alpha={:g})", alpha_); }

std::string_view to_string(Activation kind) {
    switch (kind) {
        case Activation::relu: return "relu";
        case Activation::leaky_relu: return "leaky_relu";
        case Activation::tanh: return "tanh";
        case Activation::sigmoid: return "sigmoid";
        case Activation::softplus: return "softplus";
        case Activation::elu: return "elu";
        case Activation::silu: return "silu";
    }
    throw std::invalid_argument("to_string: unknown Activation");
}

Var activate(const Var& x, Activation kind, const ActivationOptions& options) {
    switch (kind) {
        case Activation::relu: return relu(x);
        case Activation::leaky_relu: return leaky_relu(x, options.negative_slope);
        case Activation::tanh: return tanh(x);
        case Activation::sigmoid: return sigmoid(x);
        case Activation::softplus: return softplus(x);
        case Activation::elu: return elu(x, options.alpha);
        case Activation::silu: return silu(x);
    }
    throw std::invalid_argument("activate: unknown Activation");
}

std::unique_ptr<Layer> make_activation(Activation kind, const ActivationOptions& options) {
    switch (kind) {
        case Activation::relu: return std::make_unique<ReLU>();
        case Activation::leaky_relu: return std::make_unique<LeakyReLU>(options.negative_slope);
        case Activation::tanh: return std::make_unique<Tanh>();
        case Activation::sigmoid: return std::make_unique<Sigmoid>();
        case Activation::softplus: return std::make_unique<Softplus>();
        case Activation::elu: return std::make_unique<ELU>(options.alpha);
        case Activation::silu: return std::make_unique<SiLU>();
    }
    throw std::invalid_argument("make_activation: unknown Activation");
}

}  // namespace tapeflow::nn
