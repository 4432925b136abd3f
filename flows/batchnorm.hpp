// Batch normalization as a bijector (Dinh et al. 2017, RealNVP Sec. 3.7; docs/theory.md §5). In the
// data → latent direction (`inverse`, the one maximum-likelihood training runs):
//
//     z = (x − μ̃) / sqrt(σ̃² + ε) ⊙ exp(log_γ) + β,     log|det ∂z/∂x| = Σ_d [ log_γ_d − ½ log(σ̃_d² + ε) ]
//
// (the affine part exp(log_γ), β is optional). What μ̃, σ̃² are depends on the mode:
//
//   training    the batch's own mean and population variance (dividing by N), differentiated
//               through as in the paper: the loss sees how every sample moves the statistics. Each
//               such call also updates the running averages, as torch.nn.BatchNorm1d:
//                   running_mean ← (1 − m)·running_mean + m·μ̃,
//                   running_var  ← (1 − m)·running_var  + m·σ̃²·N/(N − 1)   (unbiased), m = momentum.
//               Needs N ≥ 2 (one sample has no variance).
//   evaluation  the running averages: a fixed per-dimension affine map, exactly invertible.
//
// The log-det formula is the same in both modes (for the statistics in use): in training it is the
// log-det of the map with this batch's statistics held fixed, the paper's choice.
//
// `forward` (latent → data, for sampling) always uses the running averages, in training mode too:
// a batch-statistics map has no inverse for a single new sample, and the running averages are what
// sampling from a model means. So in training mode forward and inverse are not each other's inverse
// (exactly so only after the averages converge); in evaluation mode they are, to rounding.
//
// The running averages are state, not parameters: they are the module's buffers "running_mean" and
// "running_var" (nn::Module::register_buffer), which nn::save_checkpoint saves and load restores.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "flows/bijector.hpp"

namespace tapeflow::flows {

struct BatchNormOptions {
    double momentum = 0.1;  // weight of the newest batch in the running averages, in [0, 1]
    double eps = 1e-5;      // added to the variance, > 0
    bool affine = true;     // learn log_γ and β (parameters "log_gamma", "beta", both starting at 0)
};

class BatchNorm : public Bijector {
public:
    // Running mean 0 and variance 1 to start. Throws std::invalid_argument for D = 0, a momentum
    // outside [0, 1] or an eps that is not finite and > 0.
    explicit BatchNorm(std::size_t dim, BatchNormOptions options = {});

    // x = (z − β) ⊙ exp(−log_γ) ⊙ sqrt(running_var + ε) + running_mean,
    // log|det| = −Σ_d [log_γ_d − ½ log(running_var_d + ε)].
    Transformed forward(const Var& z) override;
    // As above: batch statistics in training mode (throws std::invalid_argument for N < 2), the
    // running averages in evaluation mode.
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    const BatchNormOptions& options() const { return options_; }
    Tensor& running_mean() { return running_mean_; }
    Tensor& running_var() { return running_var_; }
    // Null when affine = false.
    Parameter* log_gamma() { return log_gamma_; }
    Parameter* beta() { return beta_; }

private:
    std::size_t dim_;
    BatchNormOptions options_;
    Parameter* log_gamma_ = nullptr;
    Parameter* beta_ = nullptr;
    Tensor& running_mean_;  // buffers "running_mean", "running_var": saved in checkpoints
    Tensor& running_var_;
};

}  // namespace tapeflow::flows
