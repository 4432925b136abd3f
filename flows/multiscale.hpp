// The multi-scale architecture of RealNVP (Dinh et al. 2017, Sec. 3.6, eqs. 13-16), as one bijector.
//
// Read from the data side: a level applies its steps (couplings, squeezes, ActNorms — any bijectors on
// that level's dimension), and then factors out half of its output: the last C/2 channels leave the
// flow as latents z_k, the first C/2 go on to the next level. The last level keeps everything:
//
//     (z_1, h_1) = f_1(x),   (z_2, h_2) = f_2(h_1),   …,   z_L = f_L(h_{L−1}),   z = (z_1, …, z_L).
//
// Every factored-out z_k is a coordinate block of the latent, and the Jacobian of x ↦ z is block
// triangular (z_k does not depend on what happens at later levels), so
//
//     log p(x) = Σ_k log p_k(z_k) + Σ_k log|det ∂(z_k, h_k)/∂h_{k−1}|
//
// — the log-likelihood is a sum over scales. With a standard normal base on all of z, p_k are standard
// normals on the blocks, so a Flow of StandardNormal(D) and this bijector computes exactly that sum.
// The latent is laid out z = [z_1, z_2, …, z_L] along the flattened dimension (flows/image.hpp: the
// last C/2 channels of a flattened image are its last D/2 entries).
//
// `inverse` is x → z, `forward` is z → x (each level's steps run forward in reverse order, with the
// factored-out half put back beside the level's continuing half).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/image.hpp"
#include "flows/flow.hpp"
#include "nn/resnet.hpp"

namespace tapeflow::flows {

struct Level {
    std::vector<std::unique_ptr<Bijector>> steps;  // in the data → latent order
    bool factor_out = true;                          // the last level must be false
};

class MultiScale : public Bijector {
public:
    // `dim` is the data dimension. Throws std::invalid_argument if there are no levels, a step is null
    // or acts on another dimension than its level's (naming level, step and both dimensions), a
    // factoring level has an odd dimension, or the last level factors out.
    MultiScale(std::size_t dim, std::vector<Level> levels);

    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    std::size_t levels() const { return levels_.size(); }
    Bijector& step(std::size_t level, std::size_t index);
    // The size of each latent block z_1 … z_L (they add up to dim()).
    const std::vector<std::size_t>& latent_sizes() const { return latent_sizes_; }

    // x → the latent blocks z_k [N, |z_k|] and the total log|det ∂z/∂x| [N]: the terms of the sum above.
    struct Latents {
        std::vector<Var> blocks;
        Var log_abs_det_jacobian;
    };
    Latents latents(const Var& x);

private:
    struct StoredLevel {
        std::vector<Bijector*> steps;
        bool factor_out;
        std::size_t dim;
    };
    std::size_t dim_;
    std::vector<StoredLevel> levels_;
    std::vector<std::size_t> latent_sizes_;
};

// The model of the paper's Sec. 4.1 for a data shape [C, H, W]: per scale, `checkerboard` checkerboard
// couplings, a squeeze, `channel` channel-wise couplings and a factor-out of half the channels; then
// `final_couplings` checkerboard couplings at the last scale. Mask parities alternate within each
// group. ResNet conditioners with hidden[s] channels at scale s (the last entry also for the final
// couplings), `blocks` residual blocks each. With actnorm, a ChannelActNorm precedes every coupling.
struct MultiScaleOptions {
    ImageShape image{1, 28, 28};
    std::size_t scales = 2;
    std::size_t checkerboard = 3;
    std::size_t channel = 3;
    std::size_t final_couplings = 4;
    std::vector<std::size_t> hidden = {16, 32};
    std::size_t blocks = 1;
    bool weight_norm = true;
    bool batch_norm = true;
    bool actnorm = false;
    std::uint64_t seed = 0;
};

// A Flow: StandardNormal(C·H·W) and the MultiScale bijector above. Throws std::invalid_argument for
// an image that cannot be squeezed `scales` times (H, W divisible by 2^scales), no hidden sizes, or
// zero couplings everywhere.
std::unique_ptr<Flow> make_multiscale_realnvp(const MultiScaleOptions& options);

// n samples at temperature T: z ~ N(0, T² I) in every latent block (every scale), pushed through the
// flow's layers; under no_grad. T = 1 is the model's own distribution; T < 1 trades diversity for
// typicality (Kingma & Dhariwal 2018, Sec. 5). Throws std::invalid_argument unless T > 0 is finite.
Tensor sample_at_temperature(Flow& flow, std::size_t n, double temperature, Rng& rng);

}  // namespace tapeflow::flows
