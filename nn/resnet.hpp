// The ResNet conditioner of RealNVP's coupling layers on images (Dinh et al. 2017, Sec. 4.1; residual
// blocks of He et al. 2016 in their pre-activation form, "Identity Mappings in Deep Residual Networks"):
//
//     in → Conv 3×3 → [ResidualBlock] × blocks → BatchNorm → ReLU → Conv 3×3 (zero) → out
//     ResidualBlock(h) = h + Conv(ReLU(BatchNorm(Conv(ReLU(BatchNorm(h))))))
//
// All convolutions "same" 3×3 with weight normalization (except the last); the last convolution is
// zero-initialized (weight and bias), so the network outputs exactly 0 and a coupling that uses it
// starts as the identity. With batch_norm = false the BatchNorm layers are left out. Each BatchNorm → ReLU
// pair is one layer, BatchNorm2d with BatchNorm2dOptions::relu (one tape node).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "nn/batchnorm2d.hpp"
#include "nn/conv2d.hpp"
#include "nn/sequential.hpp"
#include "tensor/random.hpp"

namespace tapeflow::nn {

struct ResNetOptions {
    std::size_t hidden = 16;  // channels inside the network
    std::size_t blocks = 1;
    std::size_t kernel = 3;
    bool weight_norm = true;
    bool batch_norm = true;
};

class ResidualBlock : public Layer {
public:
    // Throws std::invalid_argument for zero channels or an even kernel.
    ResidualBlock(std::size_t channels, Rng& rng, const ResNetOptions& options);
    Var forward(const Var& h) override;
    std::string name() const override;
    // [BatchNorm →] ReLU → Conv → [BatchNorm →] ReLU → Conv.
    Sequential& body() { return body_; }

private:
    std::size_t channels_;
    Sequential& body_;
};

// The network above, in → out channels. Its layers draw from `rng` in order. Throws
// std::invalid_argument for a zero channel count (in, out or hidden) or an even kernel.
std::unique_ptr<Sequential> make_resnet(std::size_t in_channels, std::size_t out_channels, Rng& rng,
                                        const ResNetOptions& options = {});

}  // namespace tapeflow::nn
