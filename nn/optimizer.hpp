// Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, each with exactly the update of
// its torch.optim namesake (formulas below, applied elementwise to every parameter p with gradient g
// at step t = 1, 2, …).
//
// Usage per training step: `optimizer.zero_grad(); loss = …; tape.backward(loss); optimizer.step();
// tape.clear();`. An optimizer works on the Parameter pointers it was given (module.parameters()), which
// must outlive it. Its state (moment buffers) is exposed by name so that checkpoints can save and
// restore it together with step_count() and learning_rate().
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "autograd/parameter.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::nn {

class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    // Applies one update from the parameters' current gradients and counts it (t = step_count()).
    // Throws std::invalid_argument if a gradient or a state tensor does not have its parameter's shape.
    void step();
    // Sets every parameter's gradient to zero.
    void zero_grad();

    double learning_rate() const { return learning_rate_; }
    // Throws std::invalid_argument unless lr is finite and ≥ 0 (schedules call this every step).
    void set_learning_rate(double lr);
    // Updates applied so far; Adam's bias correction and SGD's first momentum step read it.
    std::size_t step_count() const { return step_count_; }
    void set_step_count(std::size_t count) { step_count_ = count; }

    const std::vector<Parameter*>& parameters() const { return parameters_; }
    // The state tensors, named "<optimizer>.<buffer>.<parameter index>" ("adam.m.3", "adam.v.3",
    // "sgd.momentum.0"), each of its parameter's shape. Writing into them (or assigning a tensor of
    // the same shape) restores a saved state. Empty for plain SGD.
    virtual std::vector<std::pair<std::string, Tensor*>> state() { return {}; }
    // The optimizer and its hyperparameters, e.g. "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0)".
    virtual std::string name() const = 0;

protected:
    // Throws std::invalid_argument (naming `who`) for an empty list, a null or repeated parameter,
    // or an invalid learning rate.
    Optimizer(std::vector<Parameter*> parameters, double learning_rate, const char* who);
    // One update; step_count() already includes it.
    virtual void update() = 0;
    // Throws before an update if a state tensor lost its parameter's shape (after a bad restore).
    virtual void check_state() const {}
    void require_buffer_shapes(const std::vector<Tensor>& buffers, const char* what) const;
    // One zero tensor per parameter, of its shape.
    std::vector<Tensor> zeros_like_parameters() const;

private:
    std::vector<Parameter*> parameters_;
    double learning_rate_;
    std::size_t step_count_ = 0;
    const char* who_;
};

// torch.optim.SGD, with d = dampening, μ = momentum, λ = weight_decay:
//   g ← g + λ·p
//   b ← g  at t = 1;   b ← μ·b + (1 − d)·g  afterwards        (only when μ ≠ 0)
//   g ← g + μ·b  (Nesterov)  or  g ← b                       (only when μ ≠ 0)
//   p ← p − lr·g
struct SGDOptions {
    double lr = 1e-3;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;
};

class SGD : public Optimizer {
public:
    // Throws std::invalid_argument for lr, momentum, dampening or weight_decay negative or not finite,
    // and for Nesterov without momentum or with dampening (as PyTorch).
    SGD(std::vector<Parameter*> parameters, SGDOptions options = {});
    std::vector<std::pair<std::string, Tensor*>> state() override;
    std::string name() const override;
    // As constructed: options().lr is the initial rate, learning_rate() the current one.
    const SGDOptions& options() const { return options_; }

private:
    void update() override;
    void check_state() const override;
    SGDOptions options_;
    std::vector<Tensor> momentum_;  // empty when momentum = 0
};

// torch.optim.Adam (Kingma & Ba 2015, Algorithm 1, with ε outside the square root as PyTorch):
//   g ← g + λ·p                                   (L2 penalty, only when λ ≠ 0)
//   m ← β₁·m + (1 − β₁)·g        v ← β₂·v + (1 − β₂)·g²
//   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
};

class Adam : public Optimizer {
public:
    // Throws std::invalid_argument for lr < 0, betas outside [0, 1), eps ≤ 0, weight_decay < 0, or
    // any of them not finite.
    Adam(std::vector<Parameter*> parameters, AdamOptions options = {});
    std::vector<std::pair<std::string, Tensor*>> state() override;
    std::string name() const override;
    // As constructed: options().lr is the initial rate, learning_rate() the current one.
    const AdamOptions& options() const { return options_; }

protected:
    // AdamW: p ← p·(1 − lr·λ) before the Adam update, instead of the L2 penalty.
    Adam(std::vector<Parameter*> parameters, AdamOptions options, bool decoupled, const char* who);

private:
    void update() override;
    void check_state() const override;
    AdamOptions options_;
    bool decoupled_;
    std::vector<Tensor> m_;
    std::vector<Tensor> v_;
};

// torch.optim.AdamW (Loshchilov & Hutter 2019): weight decay decoupled from the gradient,
//   p ← p·(1 − lr·λ), then the Adam update above with λ = 0.
// Its default λ is 0.01, as PyTorch's.
struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
};

class AdamW : public Adam {
public:
    AdamW(std::vector<Parameter*> parameters, AdamWOptions options = {});
    std::string name() const override;
};

}  // namespace tapeflow::nn
