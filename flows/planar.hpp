// The planar flow of Rezende & Mohamed (2015, eqs. 10-13, Appendix A.1; docs/theory.md §3):
//
//     f(z) = z + û · tanh(wᵀz + b),      log|det ∂f/∂z| = log(1 + sech²(wᵀz + b) · wᵀû),
//
// a contraction or expansion of space along the hyperplane wᵀz + b = 0. Invertibility needs
// wᵀû > −1; it holds for every value of the free parameters u, w through the reparameterization
//
//     û = u + (m(wᵀu) − wᵀu) · w / ‖w‖²,   m(a) = −1 + softplus(a)   ⇒   wᵀû = softplus(wᵀu) − 1.
//
// The inverse has no closed form: it solves one scalar equation per sample by a bracketed Newton
// method (see `solve_planar_alpha`) and is differentiable through the implicit function theorem.
#pragma once

#include <cstddef>
#include <string>

#include "flows/bijector.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

struct PlanarOptions {
    double init_std = 0.1;  // u, w ~ N(0, init_std²) and b = 0 (docs/theory.md, "Planar flows")
    // With u, w ~ N(0, σ²) and σ small, wᵀu ≈ 0 and so wᵀû ≈ softplus(0) − 1 = ln 2 − 1: every layer
    // starts as a contraction by ≈ ½ along its w, and a deep stack squeezes the base to a speck.
    // near_identity moves u along w so that wᵀu = ln(e − 1), i.e. wᵀû = 0 and û ⊥ w: each layer then
    // starts as a small shear with log|det| = 0 everywhere. Needs init_std > 0.
    bool near_identity = false;
};

class Planar : public Bijector {
public:
    // Parameters "u" [D], "w" [D], "b" [1]. Throws std::invalid_argument if D = 0 or init_std < 0.
    Planar(std::size_t dim, Rng& rng, PlanarOptions options = {});

    // x = z + û tanh(wᵀz + b); log|det| = log(1 + sech²(wᵀz + b) wᵀû), evaluated as
    // log1p(sech² · wᵀû) when wᵀû ≥ −½ and as log(tanh² + sech² · softplus(wᵀu)) otherwise: a sum of
    // two non-negative terms, so it stays accurate (and finite) as wᵀû → −1.
    Transformed forward(const Var& z) override;
    // z = y − û tanh(α + b), where α = wᵀz solves wᵀy = α + wᵀû tanh(α + b);
    // log|det| = −log(1 + sech²(α + b) wᵀû). The root α* is found without recording; one recorded
    // Newton step α* − g(α*)/g'(α*) then has the value α* and, by the implicit function theorem,
    // the exact derivative with respect to y and the parameters.
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    Parameter& u() { return u_; }
    Parameter& w() { return w_; }
    Parameter& b() { return b_; }
    // The constrained û [D] for the current parameters (plain values).
    Tensor u_hat() const;
    // wᵀû = softplus(wᵀu) − 1 > −1.
    double w_dot_u_hat() const;
    // 1 + wᵀû = softplus(wᵀu) > 0: the same constraint without the rounding of wᵀû to −1
    // when wᵀu ≪ 0 (then wᵀû = −1 + e^{wᵀu} exactly, which a double cannot tell from −1).
    double one_plus_w_dot_u_hat() const;

    // The largest number of Newton iterations any sample needed in the last `inverse` call.
    int last_inverse_iterations() const { return last_inverse_iterations_; }

private:
    std::size_t dim_;
    Parameter& u_;
    Parameter& w_;
    Parameter& b_;
    int last_inverse_iterations_ = 0;
};

// The scalar root of the planar inverse: the α with  α + c · tanh(α + b) = s, where c = wᵀû > −1 and
// c_plus_one = 1 + c = softplus(wᵀu) is passed separately, to full precision, for the derivative
// g'(α) = tanh²(α + b) + sech²(α + b) · (1 + c) > 0 (so g is strictly increasing).
// The root lies in [s − |c|, s + |c|]; Newton's method runs inside that bracket, which shrinks
// with every step, and a step that would leave it is replaced by bisection. Stops when the step
// no longer changes α, |g(α)| has reached its rounding error (then one last Newton step), or the
// bracket has closed to adjacent doubles. The result is within ~2ε·(|s| + |c| + |α| + |c| sech²·(|α| + |b|))/g'(α)
// of the exact root: the precision the equation itself has in doubles. About 4 iterations for a
// near-identity flow, at most ~20 even for wᵀû = 200 (planar_test.cpp measures both).
struct PlanarRoot {
    double alpha;
    int iterations;
};
PlanarRoot solve_planar_alpha(double s, double c, double c_plus_one, double b);

}  // namespace tapeflow::flows
