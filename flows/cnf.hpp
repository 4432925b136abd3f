// A continuous normalizing flow (Chen et al. 2018, §4; Grathwohl et al. 2019, FFJORD): the map z → x is
// the solution at t = 1 of dz/dt = f(z, t; θ) from z(0) = z, and its log-determinant comes from the
// instantaneous change of variables (Chen et al. 2018, Theorem 1, eq. 4; docs/theory.md §12):
//
//     d log p(z(t))/dt = −tr(∂f/∂z(t)),   so   log|det ∂x/∂z| = ∫₀¹ tr(∂f/∂z(z(t), t)) dt.
//
// Both are integrated together by RK4 (flows/ode.hpp) on the augmented state [z, ℓ] with dℓ/dt = tr, so
// the log-det is the same discretized integral the state is: forward (z → x) runs t from 0 to 1, inverse
// (x → z) from 1 to 0, and the inverse's ℓ is the exact negative of the forward's only in the limit of
// small steps (RK4 is not time-reversible): round trips and log-dets agree to the solver's O(h⁴).
//
// The trace needs the Jacobian of f, and training needs the gradient of that trace in θ: a second
// derivative. The field computes ∂f/∂z·v by forward mode, tangents carried beside the values through
// its layers, and reverse mode differentiates the result (reverse-over-forward), either
//   - exactly, tr = Σ_j e_jᵀ(∂f/∂z)e_j, D tangents (fine in 2-D), or
//   - by Hutchinson's estimator εᵀ(∂f/∂z)ε with E[εεᵀ] = I (Grathwohl et al. 2019, eq. 7): one tangent
//     whatever D is, unbiased but noisy; ε is drawn once per solve (Rademacher or Gaussian) and kept
//     for all its steps, as FFJORD does.
// Forward mode needs no tape, so the CNF also runs under NoGrad (evaluation, sampling, the conformance
// kit's value checks), where a trace by a recorded backward pass could not be taken.
//
//     auto flow = make_cnf({.dim = 2});                 // N(0, I) through one CNF layer
//     Var nll = -mean(flow->log_prob(Var(x)));          // trains like any flow (flows/trainer.hpp)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/flow.hpp"
#include "flows/ode.hpp"
#include "nn/linear.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

struct FieldTangents {
    Var value;                  // f(z, t) [N, D]
    std::vector<Var> tangents;  // (∂f/∂z) v per tangent v, [N, D] each
};

// f(z, t; θ): an MLP on z whose every layer also sees t (its input is [h, t]: the "concat" layer of
// FFJORD's toy models), tanh between layers. Its layers are plain matmul/add/tanh ops, so it can be
// differentiated twice. Parameters "layers.k.weight", "layers.k.bias".
class TimeDependentField : public nn::Module {
public:
    // hidden: the widths of the hidden layers (D + 1 → h₁ + 1 → … → D). Throws std::invalid_argument for
    // dim = 0 or a zero width.
    TimeDependentField(std::size_t dim, const std::vector<std::size_t>& hidden, Rng& rng);

    // dz/dt at (z, t): z [N, D] → [N, D]. Throws unless z is a non-empty [N, D] and t is finite.
    Var forward(const Var& z, double t);
    // f(z, t) and the directional derivatives (∂f/∂z) v for each tangent v [N, D] (row n of v a
    // direction at sample n), by forward mode through the layers: one pass carries them all beside the
    // value, as ordinary ops (so with gradients on they are differentiable in θ and z, and under NoGrad
    // they are plain values: no tape needed). Throws as forward, or for a tangent not shaped like z.
    FieldTangents forward_with_tangents(const Var& z, double t, const std::vector<Var>& tangents);
    std::size_t dim() const { return dim_; }
    std::string name() const override;  // "TimeDependentField(2 → 64 → 64 → 2, tanh, t at every layer)"

private:
    std::size_t dim_;
    std::vector<nn::Linear*> layers_;
};

enum class TraceEstimator {
    exact,                  // Σ_j ∂f_j/∂z_j: D backward passes
    hutchinson_rademacher,  // εᵀ(∂f/∂z)ε, ε_j = ±1: variance 2 Σ_{i≠j} A_ij² (A the symmetric part)
    hutchinson_gaussian,    // εᵀ(∂f/∂z)ε, ε ~ N(0, I): variance 2 ‖A‖_F², never smaller
};
std::string_view to_string(TraceEstimator trace);

// tr(∂f/∂z(z, t)) per sample [N], exactly: Σ_j e_jᵀ(∂f/∂z)e_j, the D tangents e_j carried through f in
// one forward-mode pass (TimeDependentField::forward_with_tangents). With gradients on, the result is
// recorded and reverse mode differentiates it in θ: the training gradient is reverse-over-forward, a
// second derivative of f. Under NoGrad it is a plain value (no tape is needed, so evaluation and
// sampling run there). When fz is given, f(z, t) of the same pass is stored in it.
Var exact_trace(TimeDependentField& field, const Var& z, double t, Var* fz = nullptr);
// εᵀ(∂f/∂z)ε per sample [N] for a constant ε [N, D]: one tangent instead of D.
Var hutchinson_trace(TimeDependentField& field, const Var& z, double t, const Tensor& eps, Var* fz = nullptr);
// Noise for Hutchinson's estimator: [n, d] of ±1 (rademacher) or N(0, 1) (gaussian).
Tensor hutchinson_noise(TraceEstimator trace, std::size_t n, std::size_t d, Rng& rng);

struct CNFOptions {
    std::size_t dim = 2;
    std::vector<std::size_t> hidden = {64, 64};
    std::size_t steps = 8;  // RK4 steps over [0, 1]
    TraceEstimator trace = TraceEstimator::exact;
    std::uint64_t seed = 0;        // the field's weights
    std::uint64_t noise_seed = 1;  // Hutchinson's ε, one draw per solve
};

// The CNF as a Bijector: forward integrates t: 0 → 1, inverse 1 → 0; both return the integrated
// log|det J| [N] of the map they apply.
class CNF : public Bijector {
public:
    explicit CNF(const CNFOptions& options = {});

    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return field_->dim(); }
    std::string name() const override;  // "CNF(2-D, 8 RK4 steps, exact trace)"

    // The state at t_k = t0 + k(t1 − t0)/steps, k = 0 … steps, for a batch of points (for figures of the
    // flow's trajectories): the same RK4 steps as forward/inverse, without the log-det, under NoGrad.
    std::vector<Tensor> trajectory(const Tensor& start, double t0, double t1);

    TimeDependentField& field() { return *field_; }
    std::size_t steps() const { return steps_; }
    void set_steps(std::size_t steps);  // ≥ 1
    TraceEstimator trace() const { return trace_; }
    void set_trace(TraceEstimator trace) { trace_ = trace; }

    // d[z, ℓ]/dt at time t: the augmented field, (f(z, t), tr ∂f/∂z) with the current trace estimator
    // (eps used by Hutchinson's, ignored by the exact trace).
    ode::State augmented_field(const ode::State& y, double t, const Tensor& eps);

private:
    Transformed integrate(const Var& start, double t0, double t1, const std::string& who);

    TimeDependentField* field_;
    std::size_t steps_;
    TraceEstimator trace_;
    Rng noise_rng_;
};

// A StandardNormal(dim) base pushed through one CNF with these options.
std::unique_ptr<Flow> make_cnf(const CNFOptions& options = {});

}  // namespace tapeflow::flows
