// Linear: the affine layer y = x·W + b, and its functional form `linear`.
//
// Layout: the weight is stored [in, out], so the forward pass is the formula as written on paper,
// x [N, in] · W [in, out] + b [out] → [N, out], with no transpose anywhere; `summary()` then reads
// "weight [2, 64]" for a 2 → 64 layer, in the direction data flows. (PyTorch stores [out, in] and
// computes x·Wᵀ; to load PyTorch weights, transpose them.) Speed does not decide it: gemm packs
// either layout, and x·W measured 0-10% faster than x·Wᵀ at the sizes of bench/bench_nn.cpp.
#pragma once

#include <cstddef>
#include <string>

#include "autograd/var.hpp"
#include "nn/init.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::nn {

// y = x·W + b for x [N, in], W [in, out], b [out] (or an undefined/empty Var for no bias) → [N, out].
// One tape node: the backward computes dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ_rows dy, each only when that
// operand needs a gradient. Throws std::invalid_argument on mismatched shapes.
Var linear(const Var& x, const Var& weight, const Var& bias);
Var linear(const Var& x, const Var& weight);

// relu(x·W + b) as one tape node, with the same shapes and errors as `linear` (bias may be undefined).
// Fusing saves two of the three passes over the output that linear followed by relu makes, and in the
// backward the ReLU's mask and db = Σ_rows dp share one pass (bench/bench_train: MLP conditioners).
Var linear_relu(const Var& x, const Var& weight, const Var& bias);

struct LinearOptions {
    bool bias = true;
    // PyTorch's nn.Linear default: W ~ U(±1/√in) (kaiming_uniform with a = √5), b ~ U(±1/√in).
    Init init = Init::kaiming_uniform();
    // Applied with the layer's fan_in and fan_out, so kaiming_uniform gives b ~ U(±1/√in) as PyTorch.
    // Init::zeros() is the usual companion of xavier_* and normal.
    Init bias_init = Init::kaiming_uniform();
};

class Linear : public Layer {
public:
    // Draws the weight, then the bias, from `rng` (so the same seed gives the same layer).
    // Throws std::invalid_argument if either size is zero.
    Linear(std::size_t in_features, std::size_t out_features, Rng& rng, LinearOptions options = {});

    // x [..., in] → [..., out]: any number of leading axes (none for a single sample [in]).
    // Throws std::invalid_argument, naming the layer and the input's shape, unless x's last axis has
    // in_features entries.
    Var forward(const Var& x) override;
    // relu(forward(x)) as one node (linear_relu); MLP uses it for its Linear → ReLU pairs.
    Var forward_relu(const Var& x);
    // "Linear(2 → 64)", or "Linear(2 → 64, bias=false)".
    std::string name() const override;

    std::size_t in_features() const { return in_; }
    std::size_t out_features() const { return out_; }
    Parameter& weight() { return *weight_; }
    const Parameter& weight() const { return *weight_; }
    // Null when the layer was built with bias = false.
    Parameter* bias() { return bias_; }
    const Parameter* bias() const { return bias_; }

private:
    // forward's shape checks and rank folding around `op` (linear or linear_relu).
    Var apply(const Var& x, Var (*op)(const Var&, const Var&, const Var&));

    std::size_t in_;
    std::size_t out_;
    Parameter* weight_;
    Parameter* bias_ = nullptr;
};

}  // namespace tapeflow::nn
