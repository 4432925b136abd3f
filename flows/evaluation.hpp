// Evaluating a trained flow: the reverse-KL loss and the KL on a box for an energy, the test NLL on
// data, and the flow's density on a grid for heatmaps (next to energy_density_grid of targets.hpp).
// Everything runs under NoGrad, in chunks, so any number of samples fits in memory; nothing is
// recorded on the tape. Modules with mode-dependent behaviour (batch statistics) are evaluated in
// whatever mode they are in: call flow.eval() first where that matters.
#pragma once

#include <cmath>
#include <cstddef>

#include "flows/flow.hpp"
#include "flows/targets.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::flows {

struct ReverseKLEvaluation {
    // E_q[log q(x) + U(x)], the reverse-KL loss at β = 1 (≥ −log Z), averaged over the samples.
    double loss = 0;
    // Its Monte-Carlo standard error, std(log q + U)/√n (0 when q ∝ exp(−U) exactly).
    double standard_error = 0;
    // log Z_box = log ∫_{(−box, box)²} exp(−U), by log_partition_box.
    double log_z_box = 0;
    // loss + log Z_box: the KL divergence KL(q ‖ exp(−U)/Z_box) when q and the target both live in
    // the box, and the figure docs/theory.md §8 reports for U1–U4 (whose Z exists only on a box) in any case.
    double kl_box = 0;
};

// Estimates the above from n_samples draws x ~ q of the flow (drawn from rng). For a 2-D flow only.
// Throws std::invalid_argument if the flow is not 2-D, n_samples = 0, the energy is empty, or it does
// not return one value per sample; and as log_partition_box for a bad box.
ReverseKLEvaluation evaluate_reverse_kl(Flow& flow, const Energy& energy, std::size_t n_samples, Rng& rng,
                                        double box = 4.0);

// The KL divergence on the box that is never negative: q conditioned on the box, q_box = q·1_box/m
// with m = ∫_box q, against p_box = exp(−U)·1_box/Z_box:
//     KL(q_box ‖ p_box) = E_q[log q + U | x ∈ box] − log m + log Z_box  ≥ 0,
// which equals ReverseKLEvaluation::kl_box when m = 1 (docs/theory.md, "KL on a box").
struct BoxKLEvaluation {
    double mass = 0;                // m, the fraction of the samples inside the box
    double kl = NAN;                // NaN when fewer than 2 samples fall inside
    double standard_error = NAN;    // of the conditional mean and of log m together
};

// Estimates the above from n_samples draws x ~ q (drawn from rng), given log Z_box of the energy on
// the same box (log_partition_box). For a 2-D flow only. Throws std::invalid_argument if the flow is
// not 2-D, n_samples = 0, the energy is empty or does not return one value per sample, box is not
// > 0 (finite), or log_z_box is not finite.
BoxKLEvaluation evaluate_box_kl(Flow& flow, const Energy& energy, double log_z_box, std::size_t n_samples, Rng& rng,
                                double box = 4.0);

// The mean negative log-likelihood −(1/N) Σ log p(x_n) in nats of data x [N, D] (the forward-KL loss;
// ≥ the entropy of the data in expectation). +inf if some x_n has density 0 under the flow.
// Throws std::invalid_argument unless x is a non-empty [N, D] with the flow's D.
double evaluate_nll(Flow& flow, const Tensor& x);

// The flow's density q(x) on box_grid(box, n) (targets.hpp), as an image [n, n]: row r at
// y_r = −box + (r + ½)h, column c at x_c = −box + (c + ½)h, h = 2·box/n, so row 0 is the bottom
// edge. Σ q·h² ≈ the mass of q inside the box.
// Throws std::invalid_argument if the flow is not 2-D, box is not > 0 (finite), or n = 0.
Tensor density_grid(Flow& flow, double box = 4.0, std::size_t n = 200);
// The mass of q inside the box from its density_grid(flow, box, n): Σ q·h² (the midpoint rule).
// Throws std::invalid_argument if `density` is not a square [n, n] grid or box is not > 0 (finite).
double grid_mass(const Tensor& density, double box);

// ∫ q over the box (−box, box)² with an error bar, by the midpoint rule on `shifts` randomly shifted
// n × n grids (Cranley & Patterson 1976): every point of one grid moves by the same offset
// u ~ U[−h/2, h/2)², h = 2·box/n, so each point is uniform in its cell and h² Σ q(x_i + u) is an
// unbiased estimate of the mass whatever q looks like (a fixed grid's error is c·h² only once h
// resolves q); the spread over the independent shifts gives the standard error, on shifts − 1 degrees
// of freedom. Against box_fraction, two independent estimates of one number: a density whose log-det
// is wrong or missing puts a different mass in the box than its sampler does.
struct BoxMass {
    double mass = 0;
    double standard_error = 0;
};
// Throws std::invalid_argument if the flow is not 2-D, box is not > 0 (finite), n = 0 or shifts < 2.
BoxMass shifted_grid_mass(Flow& flow, double box, std::size_t n, std::size_t shifts, Rng& rng);

// The fraction of n_samples draws of q inside the box, with its binomial standard error
// √(p(1 − p)/n), p(1 − p) floored at 1/n (no sample outside does not mean no mass outside).
// Throws std::invalid_argument if the flow is not 2-D, box is not > 0 (finite) or n_samples = 0.
BoxMass box_fraction(Flow& flow, std::size_t n_samples, Rng& rng, double box = 4.0);

}  // namespace tapeflow::flows
