// The affine coupling layer of RealNVP (Dinh et al. 2017, eqs. 4-9; docs/theory.md §5) and its masks.
//
// A binary mask b ∈ {0,1}^D splits the coordinates: those with b_j = 1 are copied, the others are
// scaled and shifted by amounts computed from the copied ones only. In the data → latent direction
// the paper writes (and we implement as `inverse`, so that maximum likelihood, which runs the
// inverse, matches the paper and the PyTorch reference line by line):
//
//     z = b ⊙ x + (1 − b) ⊙ ( x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x) ),      log|det ∂z/∂x| = Σ_j (1 − b_j) s_j
//
// and the closed-form inverse, our `forward` (latent → data):
//
//     x = b ⊙ z + (1 − b) ⊙ ( (z − t(b ⊙ z)) ⊙ exp(−s(b ⊙ z)) ),   log|det ∂x/∂z| = −Σ_j (1 − b_j) s_j
//
// (b ⊙ z = b ⊙ x: the copied coordinates are the same on both sides, so both directions see the same
// s and t). The Jacobian is triangular after sorting the coordinates copied-first, so its
// determinant is the product of its diagonal: the exp(s_j). s and t are never inverted and may be
// any network: here one conditioner D → … → 2D whose output is split into (s_raw, t), with the
// scale stabilized as s = scale ⊙ tanh(s_raw) and `scale` a learned vector initialized to 1.
//
// Conditional (flows/conditional.hpp): with a context c [N, C] the conditioner reads (b ⊙ u, c), so s
// and t, and with them the map, depend on c; nothing else changes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/conditional.hpp"
#include "nn/activation.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

// ---- masks -----------------------------------------------------------------------------------------

// Alternate entries for a vector of D ≥ 2 coordinates: b_j = 1 when j + parity is even, so
// parity 0 gives [1, 0, 1, 0, …] and parity 1 its complement [0, 1, 0, 1, …]. For D = 2 these are
// [1, 0] and [0, 1]: each coupling copies one coordinate and updates the other. (Splitting into
// halves is the other common choice for vectors; for D = 2 the two coincide.)
// Throws std::invalid_argument for D < 2 or a parity other than 0 or 1.
Tensor alternating_mask(std::size_t dim, std::size_t parity);

// The checkerboard of an H × W image flattened row-major (RealNVP Sec. 3.4, docs/theory.md §5):
// b = 1 where row + col is odd for parity 0; parity 1 is the complement 1 − b.
// Throws std::invalid_argument if H·W < 2 (nothing to alternate) or for a parity other than 0 or 1.
Tensor checkerboard_mask(std::size_t height, std::size_t width, std::size_t parity);

// Throws std::invalid_argument naming `who` unless `mask` is a vector [D] (D ≥ 1) whose entries are
// all 0 or 1 and not all equal (all ones copies everything and learns nothing; all zeros would let
// s and t see nothing, making the layer a learned constant affine map, which is not a coupling).
void require_mask(const Tensor& mask, std::string_view who);

// ---- the coupling layer ----------------------------------------------------------------------------

// The conditioner RealNVP uses: an MLP D + C → hidden… → 2D with the given activation and its last
// layer zero-initialized (nn::MLPOptions::zero_init_last), so s = t = 0 and the coupling starts as
// the identity. Its output columns [0, D) are s_raw and [D, 2D) are t; C is the width of a context
// (0: none). Throws std::invalid_argument for D = 0 or a zero hidden size.
std::unique_ptr<nn::Layer> make_coupling_conditioner(std::size_t dim, const std::vector<std::size_t>& hidden, Rng& rng,
                                                     nn::Activation activation = nn::Activation::relu,
                                                     std::size_t context_dim = 0);

class AffineCoupling : public ConditionalBijector {
public:
    // Children and parameters: "scale" [D] (initialized to 1), then the conditioner's, named
    // "conditioner.*". The conditioner maps b ⊙ x [N, D] (with the context appended, [N, D + C],
    // when context_dim = C > 0) to [N, 2D]; any nn::Layer works.
    // Throws std::invalid_argument for an invalid mask (see require_mask), a null conditioner, or
    // an nn::MLP conditioner whose sizes are not D + C → … → 2D.
    AffineCoupling(Tensor mask, std::unique_ptr<nn::Layer> conditioner, std::size_t context_dim = 0);
    // With make_coupling_conditioner(D, hidden, rng, activation, context_dim).
    AffineCoupling(Tensor mask, const std::vector<std::size_t>& hidden, Rng& rng,
                   nn::Activation activation = nn::Activation::relu, std::size_t context_dim = 0);

    using ConditionalBijector::forward;
    using ConditionalBijector::inverse;
    // x = b ⊙ z + (1 − b) ⊙ (z − t) ⊙ exp(−s), log|det| = −Σ_j (1 − b_j) s_j   (latent → data).
    Transformed forward(const Var& z, const Var& context) override;
    // z = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t), log|det| = Σ_j (1 − b_j) s_j      (data → latent).
    // Both throw std::invalid_argument for an input that is not [N, D], a context that is not
    // [N, C] (none when C = 0), or a conditioner output that is not [N, 2D] (naming both shapes).
    Transformed inverse(const Var& x, const Var& context) override;
    std::size_t dim() const override { return dim_; }
    std::size_t context_dim() const override { return context_dim_; }
    // "AffineCoupling(D = 2, mask [1, 0])".
    std::string name() const override;

    const Tensor& mask() const { return mask_; }
    Parameter& scale() { return scale_; }
    nn::Layer& conditioner() { return conditioner_; }

    // s = (1 − b) ⊙ scale ⊙ tanh(s_raw) and t = (1 − b) ⊙ t_raw at the points u [N, D] (which may be
    // x or z: only b ⊙ u is read), each [N, D] and zero on the copied coordinates. The tutorial
    // prints them; forward and inverse are built on it.
    struct ScaleShift {
        Var s;
        Var t;
    };
    ScaleShift scale_shift(const Var& u, const Var& context = Var());

private:
    Tensor mask_;        // b [D]
    Tensor complement_;  // 1 − b [D]
    std::size_t dim_;
    std::size_t context_dim_;
    Parameter& scale_;
    nn::Layer& conditioner_;
};

}  // namespace tapeflow::flows
