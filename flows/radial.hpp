// The radial flow of Rezende & Mohamed (2015, eq. 14, Appendix A.2; docs/theory.md §4): a contraction
// or expansion of space around a reference point z₀,
//
//     f(z) = z + β̂ h(r) (z − z₀),   r = ‖z − z₀‖,   h(r) = 1/(α + r),
//     log|det ∂f/∂z| = (D − 1) log(1 + β̂/(α + r)) + log(1 + αβ̂/(α + r)²),
//
// with α = softplus(α′) > 0 and β̂ = −α + softplus(β′) > −α, which keeps f invertible for every value
// of the free parameters α′, β′. The inverse has a closed form (a quadratic in r).
#pragma once

#include <cstddef>
#include <string>

#include "flows/bijector.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

struct RadialOptions {
    double init_std = 0.1;  // z₀, α′, β′ ~ N(0, init_std²): α ≈ ln 2 and β̂ ≈ 0, close to the identity
};

class Radial : public Bijector {
public:
    // Parameters "z0" [D], "alpha_prime" [1], "beta_prime" [1].
    // Throws std::invalid_argument if D = 0 or init_std < 0.
    Radial(std::size_t dim, Rng& rng, RadialOptions options = {});

    // With σ_β = softplus(β′) = α + β̂ (never formed as a difference, so it keeps its digits as β̂ → −α):
    //   x = z₀ + (z − z₀) · (σ_β + r)/(α + r)
    //   log|det| = (D − 1) log(σ_β + r) + log(r(2α + r) + α σ_β) − (D + 1) log(α + r),
    // the docs/theory.md §4 form with 1 + β̂/(α + r) = (σ_β + r)/(α + r) and
    // 1 + αβ̂/(α + r)² = (r(2α + r) + ασ_β)/(α + r)²: sums of positive terms, finite for any α′, β′.
    // At z = z₀ (r = 0) both are finite; r's gradient there is the subgradient 0 (‖·‖ has a cone
    // point), so the backward pass never produces 0 · ∞.
    Transformed forward(const Var& z) override;
    // With γ = ‖y − z₀‖ and a = σ_β − γ, r is the positive root of r² + a r − αγ = 0:
    //   r = 2αγ / (a + sqrt(a² + 4αγ)) for a > 0, (sqrt(a² + 4αγ) − a)/2 otherwise (no cancellation in
    //   either), then z = z₀ + (y − z₀)(α + r)/(σ_β + r) and log|det| = −(forward log|det| at r).
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    Parameter& z0() { return z0_; }
    Parameter& alpha_prime() { return alpha_prime_; }
    Parameter& beta_prime() { return beta_prime_; }
    double alpha() const;     // softplus(α′)
    double beta_hat() const;  // softplus(β′) − softplus(α′)

private:
    std::size_t dim_;
    Parameter& z0_;
    Parameter& alpha_prime_;
    Parameter& beta_prime_;
};

// r_n = ‖v_n‖ over the rows of v [N, D] → [N], without overflow or underflow of the squares.
// d r_n / d v_n = v_n / r_n, and the subgradient 0 at v_n = 0 (the composition sqrt(Σ v²) would give
// 0 · ∞ = NaN there). Throws std::invalid_argument unless v is 2-D.
Var row_norm(const Var& v);

}  // namespace tapeflow::flows
