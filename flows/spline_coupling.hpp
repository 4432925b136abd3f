// The rational-quadratic spline coupling of Neural Spline Flows (Durkan et al. 2019, Sec. 3.1 and eq. 3;
// docs/theory.md §9): the affine coupling (flows/coupling.hpp) with its affine map replaced by a
// monotonic rational-quadratic spline per transformed coordinate (flows/spline.hpp).
//
// A binary mask b splits the coordinates. The copied ones (b_j = 1) pass unchanged; a conditioner
// reads b ⊙ u (and the context c, when the coupling is conditional) and returns 3K − 1 raw spline
// parameters for each of the M transformed coordinates (b_j = 0):
//
//     x_j = z_j                     (b_j = 1)
//     x_j = g_j(z_j; θ_j(b ⊙ z, c))  (b_j = 0)        log|det ∂x/∂z| = Σ_{b_j = 0} log g_j'(z_j)
//
// and the inverse applies g_j⁻¹ with the same θ_j (b ⊙ x = b ⊙ z). The Jacobian is triangular after
// sorting the copied coordinates first, so its determinant is the product of the g_j'.
// The conditioner's columns are grouped by coordinate: columns [m(3K − 1), (m + 1)(3K − 1)) are the
// raw parameters of the m-th transformed coordinate (in increasing j).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flows/conditional.hpp"
#include "flows/spline.hpp"
#include "nn/activation.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

// An MLP D + C → hidden… → M(3K − 1), its last layer zero-initialized, so every raw parameter starts
// at 0 and the coupling starts as the identity. Also the spline conditioner of a conditional flow:
// with context_dim = C > 0 it reads the context appended to b ⊙ u. Throws std::invalid_argument for
// D = 0, M = 0, K = 0 or a zero hidden size.
std::unique_ptr<nn::Layer> make_spline_conditioner(std::size_t dim, std::size_t transformed, std::size_t bins,
                                                   const std::vector<std::size_t>& hidden, Rng& rng,
                                                   nn::Activation activation = nn::Activation::relu,
                                                   std::size_t context_dim = 0);

class SplineCoupling : public ConditionalBijector {
public:
    // Child "conditioner" (its parameters "conditioner.*"); any nn::Layer mapping [N, D + C] to
    // [N, M(3K − 1)] works. Throws std::invalid_argument for an invalid mask (see require_mask), invalid
    // options, a null conditioner, or an nn::MLP conditioner whose sizes are not D + C → … → M(3K − 1).
    SplineCoupling(Tensor mask, std::unique_ptr<nn::Layer> conditioner, SplineOptions options = {},
                   std::size_t context_dim = 0);
    // With make_spline_conditioner(D, M, K, hidden, rng, activation, context_dim).
    SplineCoupling(Tensor mask, const std::vector<std::size_t>& hidden, Rng& rng, SplineOptions options = {},
                   nn::Activation activation = nn::Activation::relu, std::size_t context_dim = 0);

    using ConditionalBijector::forward;
    using ConditionalBijector::inverse;
    // Both throw std::invalid_argument for an input that is not [N, D], a context that is not [N, C]
    // (none when C = 0), or a conditioner output that is not [N, M(3K − 1)] (naming both shapes).
    Transformed forward(const Var& z, const Var& context) override;
    Transformed inverse(const Var& x, const Var& context) override;
    std::size_t dim() const override { return dim_; }
    std::size_t context_dim() const override { return context_dim_; }
    // "SplineCoupling(D = 2, mask [1, 0], K = 8, B = 3)".
    std::string name() const override;

    const Tensor& mask() const { return mask_; }
    const SplineOptions& options() const { return options_; }
    nn::Layer& conditioner() { return conditioner_; }
    // The raw spline parameters [N, M, 3K − 1] at the points u [N, D] (only b ⊙ u is read).
    Var raw_parameters(const Var& u, const Var& context = Var());

private:
    Transformed apply(const Var& u, const Var& context, bool inverse, const char* who);

    Tensor mask_;                          // b [D]
    std::vector<std::size_t> transformed_;  // the j with b_j = 0, increasing
    Tensor placement_;                     // [M, D]: row m is the one-hot of transformed_[m]
    std::size_t dim_;
    std::size_t context_dim_;
    SplineOptions options_;
    nn::Layer& conditioner_;
};

}  // namespace tapeflow::flows
