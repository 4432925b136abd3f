// Conv2d: the "same" 2-D convolution layer on image batches [N, C_in, H, W] → [N, C_out, H, W]
// (autograd/conv.hpp), stride 1, odd square kernels.
//
// Weights are stored [C_out, C_in, k, k] as in PyTorch and drawn as nn.Conv2d draws them:
// kaiming_uniform with a = √5 over fan_in = C_in·k², i.e. W ~ U(±1/√fan_in), and b ~ U(±1/√fan_in).
// With weight_norm the layer learns v (same shape, same initialization) and g [C_out] instead of W,
// with W = g · v/‖v‖ per output channel (nn/weight_norm.hpp) and g starting at ‖v‖, so the initial
// layer is the same either way. zero_init sets the weight (or g) and the bias to zero after drawing
// them — the last layer of a coupling's conditioner, so the coupling starts as the identity.
#pragma once

#include <cstddef>
#include <string>

#include "autograd/var.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::nn {

struct Conv2dOptions {
    bool bias = true;
    bool weight_norm = false;
    bool zero_init = false;
};

class Conv2d : public Layer {
public:
    // Parameters "weight" (or "v" and "g" with weight_norm), then "bias". Throws
    // std::invalid_argument for a zero channel count or an even kernel size.
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, Rng& rng, Conv2dOptions options = {});

    // x [N, C_in, H, W] → [N, C_out, H, W]; throws std::invalid_argument naming the layer and the
    // input's shape for anything else.
    Var forward(const Var& x) override;
    // "Conv2d(16 → 32, 3×3)", with ", weight_norm" / ", bias=false" where they apply.
    std::string name() const override;

    std::size_t in_channels() const { return in_; }
    std::size_t out_channels() const { return out_; }
    std::size_t kernel() const { return kernel_; }
    // The weight W in use (computed from v and g with weight_norm), as a Var of this step.
    Var weight();
    // Null when the layer was built without it.
    Parameter* bias() { return bias_; }
    Parameter* plain_weight() { return weight_; }
    Parameter* direction() { return v_; }
    Parameter* length() { return g_; }

private:
    std::size_t in_, out_, kernel_;
    Parameter* weight_ = nullptr;  // without weight_norm
    Parameter* v_ = nullptr;       // with weight_norm
    Parameter* g_ = nullptr;
    Parameter* bias_ = nullptr;
};

}  // namespace tapeflow::nn
