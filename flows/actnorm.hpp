// ActNorm (Kingma & Dhariwal 2018, Glow Sec. 3.1; docs/theory.md §5): a per-dimension affine map
//
//     x = z ⊙ exp(log_s) + b,        log|det ∂x/∂z| = Σ_d log_s_d        (forward, latent → data)
//     z = (x − b) ⊙ exp(−log_s),     log|det ∂z/∂x| = −Σ_d log_s_d       (inverse, data → latent)
//
// with a data-dependent initialization: the first `inverse` call in training mode (the first batch
// of maximum-likelihood training) sets b = mean(x) and log_s = log std(x) per dimension (the
// population std, dividing by N), so that this batch leaves the layer with exactly zero mean and
// unit variance in every dimension. After that it is an ordinary learned affine layer.
//
// `forward` never initializes (before initialization it is the identity), and evaluation mode never
// initializes. The "initialized" flag is state, not a parameter: it is the module's buffer
// "initialized" (a [1] tensor holding 0 or 1), which nn::save_checkpoint saves and load restores, so
// a resumed run does not re-initialize over the loaded values. To initialize from a batch of your
// choice (a larger or a held-out one rather than the first training batch), call initialize(x).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "flows/bijector.hpp"

namespace tapeflow::flows {

class ActNorm : public Bijector {
public:
    // Parameters "loc" b [D] and "log_scale" log_s [D], both 0 (the identity) until initialized.
    // Throws std::invalid_argument if D = 0.
    explicit ActNorm(std::size_t dim);

    Transformed forward(const Var& z) override;
    // Initializes first when training and not yet initialized; the initialization needs N ≥ 2 and
    // finite values (throws std::invalid_argument otherwise). A dimension that is constant over the
    // batch keeps log_s = 0 (there is no spread to normalize) and is only centred.
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    Parameter& loc() { return loc_; }
    Parameter& log_scale() { return log_scale_; }

    bool initialized() const { return initialized_[0] != 0; }
    // Marks the layer as initialized (or not), e.g. after loading its parameters from a checkpoint.
    void set_initialized(bool on = true) { initialized_[0] = on ? 1.0 : 0.0; }
    // Sets b and log_s from a batch x [N, D] exactly as the first training-mode inverse would, and
    // marks the layer initialized. Same errors as `inverse`.
    void initialize(const Tensor& x);

private:
    std::size_t dim_;
    Parameter& loc_;
    Parameter& log_scale_;
    Tensor& initialized_;  // buffer "initialized"
};

}  // namespace tapeflow::flows
