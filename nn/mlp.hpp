// MLP: the multilayer perceptron Linear → act → Linear → act → … → Linear (no activation after the
// last layer), built on Sequential, so its parameters are named "0.weight", "0.bias", "2.weight", …
// (activations sit at the odd positions and have no parameters).
//
// The coupling conditioners of RealNVP (docs/theory.md §5) are MLPs with zero_init_last = true: the last
// layer's weight and bias start at zero, the network outputs exactly 0, and the coupling starts as
// the identity.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nn/activation.hpp"
#include "nn/linear.hpp"
#include "nn/sequential.hpp"
#include "tensor/random.hpp"

namespace tapeflow::nn {

struct MLPOptions {
    Activation activation = Activation::relu;
    ActivationOptions activation_options = {};
    // Sets the last Linear's weight and bias to zero after drawing them, so the random stream (and
    // with it every other layer) is the same with or without it.
    bool zero_init_last = false;
    LinearOptions linear = {};  // bias and initialization of every Linear
};

class MLP : public Sequential {
public:
    // sizes = {in, hidden..., out}: sizes.size() − 1 Linear layers. Layers draw from `rng` in order.
    // Throws std::invalid_argument for fewer than two sizes or a zero size.
    MLP(std::vector<std::size_t> sizes, Rng& rng, MLPOptions options = {});

    // The layers in order, as Sequential; with Activation::relu each Linear → ReLU pair is recorded as
    // one fused node (nn::linear_relu), which computes the same values with fewer passes over memory.
    Var forward(const Var& x) override;
    // "MLP(2 → 64 → 64 → 4, relu)".
    std::string name() const override;

    const std::vector<std::size_t>& sizes() const { return sizes_; }
    // The number of Linear layers, and the k-th of them (bounds-checked).
    std::size_t depth() const { return linears_.size(); }
    Linear& linear(std::size_t k);
    const Linear& linear(std::size_t k) const;

private:
    std::vector<std::size_t> sizes_;
    MLPOptions options_;
    std::vector<Linear*> linears_;
};

}  // namespace tapeflow::nn
