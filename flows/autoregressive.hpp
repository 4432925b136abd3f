// Masked autoregressive flows (Papamakarios et al. 2017, "Masked Autoregressive Flow for Density
// Estimation", eqs. 2-5) and their inverse twin, inverse autoregressive flows (Kingma et al. 2016).
//
// The general triangular map: each coordinate is an affine function of itself whose shift μ_d and
// log-scale α_d depend on the coordinates before it. A coupling layer is the special case where
// "before" means "in the copied half" (and the copied half is not transformed). With MAF's
// conditioner reading the data side x:
//
//     x_d = z_d · exp(α_d(x_{<d})) + μ_d(x_{<d})        (forward, latent → data: D passes)
//     z_d = (x_d − μ_d(x_{<d})) · exp(−α_d(x_{<d}))     (inverse, data → latent: 1 pass)
//     log|det ∂x/∂z| = Σ_d α_d                           (the Jacobian is triangular, diag exp(α))
//
// The inverse reads only x, so one MADE pass (flows/made.hpp) gives every μ_d, α_d at once: the
// density log p(x) costs one network evaluation. The forward needs x_{<d} before it can compute x_d:
// D passes, one coordinate settling per pass (pass k fixes x_k; every coordinate is recomputed, the
// ones not yet settled are overwritten later). IAF reads the latent side instead:
//
//     x_d = z_d · exp(α_d(z_{<d})) + μ_d(z_{<d})        (forward: 1 pass)
//     z_d = (x_d − μ_d(z_{<d})) · exp(−α_d(z_{<d}))     (inverse: D passes)
//
// so sampling and the density of its own samples are one pass (reverse KL, variational inference),
// and the density of given data costs D. As in the affine coupling (flows/coupling.hpp) the
// log-scale is bounded, α = scale ⊙ tanh(α_raw) with a learned `scale` [D] initialized to 1, and the
// MADE's last layer starts at zero, so a fresh layer is the identity.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "flows/conditional.hpp"
#include "flows/made.hpp"
#include "nn/activation.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

struct AutoregressiveOptions {
    std::vector<std::size_t> hidden = {64, 64};  // the MADE's hidden layers
    std::size_t context_dim = 0;                 // C > 0: a conditional layer, f(z; c)
    nn::Activation activation = nn::Activation::relu;
};

class AffineAutoregressive : public ConditionalBijector {
public:
    enum class Kind {
        maf,  // the MADE reads x: density 1 pass, sampling D passes
        iaf,  // the MADE reads z: sampling 1 pass, density D passes
    };
    // Parameters "scale" [D] (1), then the MADE's ("made.*", params_per_dim 2: columns [0, D) are
    // μ, [D, 2D) α_raw). Throws std::invalid_argument for D = 0 or a zero hidden size.
    AffineAutoregressive(Kind kind, std::size_t dim, Rng& rng, AutoregressiveOptions options = {});

    using ConditionalBijector::forward;
    using ConditionalBijector::inverse;
    // Both throw std::invalid_argument for an input that is not [N, D] or a context that is not
    // [N, C] (none when C = 0).
    Transformed forward(const Var& z, const Var& context) override;
    Transformed inverse(const Var& x, const Var& context) override;
    std::size_t dim() const override { return made_.dim(); }
    std::size_t context_dim() const override { return made_.context_dim(); }
    // "MAF(D = 2, MADE(2 → 64 → 64 → 2×2))" or "IAF(…)".
    std::string name() const override;

    Kind kind() const { return kind_; }
    MADE& made() { return made_; }
    Parameter& scale() { return scale_; }

    // μ and α = scale ⊙ tanh(α_raw) [N, D] from one MADE pass reading u (x for MAF, z for IAF).
    struct ShiftLogScale {
        Var mu;
        Var alpha;
    };
    ShiftLogScale shift_log_scale(const Var& u, const Var& context);

private:
    // The one-pass direction: u is what the MADE reads; returns the other side and Σ α·sign.
    Transformed one_pass(const Var& u, const Var& context, bool to_latent);
    // The D-pass direction: solves for the side the MADE reads, coordinate by coordinate.
    Transformed sequential(const Var& v, const Var& context, bool to_latent);

    Kind kind_;
    Parameter& scale_;
    MADE& made_;
};

// The two kinds by name: MAF(D, rng, options) and IAF(D, rng, options).
class MAF : public AffineAutoregressive {
public:
    MAF(std::size_t dim, Rng& rng, AutoregressiveOptions options = {})
        : AffineAutoregressive(Kind::maf, dim, rng, std::move(options)) {}
};

class IAF : public AffineAutoregressive {
public:
    IAF(std::size_t dim, Rng& rng, AutoregressiveOptions options = {})
        : AffineAutoregressive(Kind::iaf, dim, rng, std::move(options)) {}
};

}  // namespace tapeflow::flows
