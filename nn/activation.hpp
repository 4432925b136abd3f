// Activation functions: as functions on Var, as Layers (for Sequential), and as the `Activation`
// enum MLP is configured with. Each states its formula and derivative; all are numerically stable.
//
//   relu(x)           max(x, 0)                       ' = [x > 0]
//   leaky_relu(x, s)  x > 0 ? x : s·x                 ' = x > 0 ? 1 : s
//   tanh(x)                                           ' = 1 − tanh²(x)
//   sigmoid(x)        σ(x) = 1 / (1 + e⁻ˣ)            ' = σ(x)(1 − σ(x))
//   softplus(x)       log(1 + eˣ)                     ' = σ(x)
//   elu(x, α)         x > 0 ? x : α·(eˣ − 1)          ' = x > 0 ? 1 : α·eˣ
//   silu(x)           x·σ(x)  (a.k.a. swish)          ' = σ(x)·(1 + x·(1 − σ(x)))
//
// At a kink (x = 0) the derivative takes the x ≤ 0 branch, as PyTorch.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "autograd/elementwise.hpp"
#include "autograd/var.hpp"
#include "nn/module.hpp"

namespace tapeflow::nn {

// The autograd layer already provides these five; they are nn functions too.
using tapeflow::leaky_relu;
using tapeflow::relu;
using tapeflow::sigmoid;
using tapeflow::softplus;
using tapeflow::tanh;

// α must be finite (throws std::invalid_argument otherwise). expm1 keeps α·(eˣ − 1) accurate near 0.
Var elu(const Var& x, double alpha = 1.0);
Var silu(const Var& x);

class ReLU : public Layer {
public:
    Var forward(const Var& x) override { return relu(x); }
    std::string name() const override { return "ReLU"; }
};

class LeakyReLU : public Layer {
public:
    // Throws std::invalid_argument unless the slope is finite.
    explicit LeakyReLU(double negative_slope = 0.01);
    Var forward(const Var& x) override { return leaky_relu(x, negative_slope_); }
    std::string name() const override;
    double negative_slope() const { return negative_slope_; }

private:
    double negative_slope_;
};

class Tanh : public Layer {
public:
    Var forward(const Var& x) override { return tanh(x); }
    std::string name() const override { return "Tanh"; }
};

class Sigmoid : public Layer {
public:
    Var forward(const Var& x) override { return sigmoid(x); }
    std::string name() const override { return "Sigmoid"; }
};

class Softplus : public Layer {
public:
    Var forward(const Var& x) override { return softplus(x); }
    std::string name() const override { return "Softplus"; }
};

class ELU : public Layer {
public:
    // Throws std::invalid_argument unless α is finite.
    explicit ELU(double alpha = 1.0);
    Var forward(const Var& x) override { return elu(x, alpha_); }
    std::string name() const override;
    double alpha() const { return alpha_; }

private:
    double alpha_;
};

class SiLU : public Layer {
public:
    Var forward(const Var& x) override { return silu(x); }
    std::string name() const override { return "SiLU"; }
};

enum class Activation { relu, leaky_relu, tanh, sigmoid, softplus, elu, silu };

// The one constant each parametrized activation takes.
struct ActivationOptions {
    double negative_slope = 0.01;  // leaky_relu
    double alpha = 1.0;            // elu
};

// "relu", "leaky_relu", ... (the function's name).
std::string_view to_string(Activation kind);
// The activation as a function call: activate(x, Activation::elu) == elu(x, 1.0).
Var activate(const Var& x, Activation kind, const ActivationOptions& options = {});
// The activation as a Layer: make_activation(Activation::relu) is a ReLU.
std::unique_ptr<Layer> make_activation(Activation kind, const ActivationOptions& options = {});

}  // namespace tapeflow::nn
