// Training objectives for flows (docs/theory.md §2; Papamakarios et al. 2021, Sec. 2.3): the forward KL
// (maximum likelihood, from data) and the reverse KL (variational, from an energy), with the
// annealing schedule of Rezende & Mohamed (2015, eq. 20).
#pragma once

#include <cstddef>

#include "autograd/var.hpp"
#include "flows/flow.hpp"
#include "flows/targets.hpp"  // Energy
#include "tensor/random.hpp"

namespace tapeflow::flows {

// Forward KL up to the data's entropy = mean negative log-likelihood:
//     L = −(1/N) Σ_n log p(x_n),   x [N, D] → a scalar Var, differentiable in the flow's parameters.
// Throws std::invalid_argument unless x is a non-empty [N, D] with the flow's D.
Var forward_kl(Flow& flow, const Var& x);

// Reverse KL up to log Z, estimated on n reparameterized samples x_n = f(z_n), z_n ~ p_z:
//     L = (1/n) Σ_n [ log q(x_n) + β · U(x_n) ],   log q(x) = log p_z(z) − Σ_k log|det J_{f_k}(z)|.
// At β = 1, L ≥ −log Z with equality iff q = exp(−U)/Z. `energy` maps x [n, D] to U(x) [n].
// Throws std::invalid_argument if n = 0, β is not finite, or the energy returns a shape other than [n].
Var reverse_kl(Flow& flow, const Energy& energy, std::size_t n, double beta, Rng& rng);

// The inverse temperature of an annealed reverse-KL fit: β_t = min(1, β₀ + t/T) at step t, a linear
// warm-up from β₀ that reaches 1 at step (1 − β₀)·T and stays there (Rezende & Mohamed 2015, Sec. 6.1:
// β_t = min(1, 0.01 + t/10000)). A warm-up that is only a part of the run leaves the rest at β = 1,
// where the loss is the reverse KL itself; a warm-up as long as the run never trains at β = 1.
struct AnnealingSchedule {
    double beta_start = 0.01;          // β₀, in (0, 1]
    std::size_t warmup_steps = 10000;  // T ≥ 1
    // Throws std::invalid_argument unless 0 < β₀ ≤ 1 and T ≥ 1.
    double beta(std::size_t step) const;
};

// β_t of `schedule` at step t (by default the paper's min(1, 0.01 + t/10000)).
double annealing_beta(std::size_t step, const AnnealingSchedule& schedule = {});

}  // namespace tapeflow::flows
