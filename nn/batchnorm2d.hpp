// BatchNorm2d: batch normalization per channel of image batches [N, C, H, W] (Ioffe & Szegedy 2015),
// the normalization inside RealNVP's ResNet conditioners (Dinh et al. 2017, Sec. 4.1):
//
//     y = (x − μ_c) / sqrt(σ_c² + ε) · γ_c + β_c        for every pixel of channel c
//
// Training mode: μ_c, σ_c² are the batch's mean and population variance over (n, i, j), differentiated
// through, and each call updates running averages as torch.nn.BatchNorm2d does (momentum m, the
// running variance from the unbiased estimate): running ← (1 − m)·running + m·batch. Evaluation mode
// uses the running averages, so a sample's output no longer depends on the rest of its batch (what a
// bijector's conformance checks and sampling need). Parameters "weight" γ (1) and "bias" β (0).
// This is a conditioner layer, not a bijector: flows/batchnorm.hpp is the invertible kind.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace tapeflow::nn {

struct BatchNorm2dOptions {
    double momentum = 0.1;  // in [0, 1]
    double eps = 1e-5;      // finite and > 0
    // y = max(0, BN(x)): the ReLU that follows every BatchNorm of a pre-activation ResNet block, fused
    // into the same tape node (one pass and one temporary fewer each way; its derivative is 0 at the kink,
    // as tapeflow::relu's).
    bool relu = false;
};

class BatchNorm2d : public Layer {
public:
    // Throws std::invalid_argument for zero channels, a momentum outside [0, 1] or eps ≤ 0.
    explicit BatchNorm2d(std::size_t channels, BatchNorm2dOptions options = {});

    // x [N, C, H, W]; in training mode needs N·H·W ≥ 2 (one value has no variance). Throws
    // std::invalid_argument naming the layer and the shape otherwise.
    Var forward(const Var& x) override;
    std::string name() const override;

    Tensor& running_mean() { return running_mean_; }
    Tensor& running_var() { return running_var_; }
    // The non-trainable state, for checkpoints.
    std::vector<std::pair<std::string, Tensor*>> buffers() {
        return {{"running_mean", &running_mean_}, {"running_var", &running_var_}};
    }

private:
    std::size_t channels_;
    BatchNorm2dOptions options_;
    Parameter& weight_;
    Parameter& bias_;
    Tensor running_mean_;
    Tensor running_var_;
};

// The running averages of every batch-normalization layer (this one and flows/batchnorm.hpp), as
// torch.nn.BatchNorm*d keeps them: running ← (1 − m)·running + m·batch, the variance made unbiased
// (·count/(count − 1)) first. batch_mean and batch_var have the running tensors' shape; count ≥ 2.
void update_running_averages(Tensor& running_mean, Tensor& running_var, const Tensor& batch_mean,
                             const Tensor& batch_var, std::size_t count, double momentum);

}  // namespace tapeflow::nn
