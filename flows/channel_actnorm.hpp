// ActNorm per channel on images (Kingma & Dhariwal 2018, Glow Sec. 3.1): one scale and one shift per
// channel, shared by all pixels,
//
//     x = z ⊙ exp(log_s_c) + b_c,        log|det ∂x/∂z| = H·W · Σ_c log_s_c        (forward)
//     z = (x − b_c) ⊙ exp(−log_s_c),     log|det ∂z/∂x| = −H·W · Σ_c log_s_c       (inverse)
//
// initialized from data like flows/actnorm.hpp: the first `inverse` in training mode sets b_c and
// log_s_c to the mean and log std of channel c over the batch's images and pixels, so that batch leaves
// with zero mean and unit variance per channel. Batches are flattened images (flows/image.hpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/image.hpp"

namespace tapeflow::flows {

class ChannelActNorm : public Bijector {
public:
    // Parameters "loc" [C] and "log_scale" [C], 0 (the identity) until initialized.
    explicit ChannelActNorm(ImageShape image);

    Transformed forward(const Var& z) override;
    // Initializes first when training and not yet initialized (needs N·H·W ≥ 2 finite values per
    // channel; a constant channel keeps log_s = 0 and is only centred).
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return image_.numel(); }
    std::string name() const override;

    Parameter& loc() { return loc_; }
    Parameter& log_scale() { return log_scale_; }
    bool initialized() const { return initialized_[0] != 0; }
    void set_initialized(bool on = true) { initialized_[0] = on ? 1.0 : 0.0; }
    // Sets loc and log_scale from a batch [N, D] as the first training-mode inverse would.
    void initialize(const Tensor& x);

private:
    ImageShape image_;
    Parameter& loc_;
    Parameter& log_scale_;
    Tensor& initialized_;  // buffer "initialized": a checkpoint keeps it, so a resumed run does not re-initialize
};

}  // namespace tapeflow::flows
