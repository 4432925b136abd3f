// The logistic sigmoid and its inverse, the logit, as elementwise bijectors, and the image
// preprocessing RealNVP uses (Dinh et al. 2017, Sec. 4.1; docs/theory.md §6):
//
//     pixels v ∈ {0..255}  →  x = (v + u)/256, u ~ U(0,1)^D                      (dequantize)
//     x ∈ [0, 1]           →  p = α + (1 − 2α) x,  y = logit(p) = log p − log(1 − p)  (LogitPreprocessing)
//     log|dy/dx| = log(1 − 2α) − log p − log(1 − p)   per dimension
//
// and the score, bits per dimension, with the −D·log 256 that turns the density of the dequantized
// x into (a bound on) the probability of the discrete pixels v:
//
//     log p(v) ≈ log p_y(y) + Σ log|dy/dx| − D log 256,     bpd = −log p(v) / (D ln 2).
//
// All three bijectors act on any D (dim() = 0). Each log-det is written with log σ(y) and
// log σ(−y) (= log p and log(1 − p) on the latent side), which stay finite for any y.
#pragma once

#include <cstddef>
#include <string>

#include "flows/bijector.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

// x = σ(z) = 1/(1 + e^−z): R^D → (0,1)^D.
//     forward  log|det| = Σ_d [log σ(z_d) + log σ(−z_d)]   (σ' = σ(z)σ(−z))
//     inverse  z = log x − log(1 − x), log|det| = −Σ_d [log x_d + log(1 − x_d)]
// The inverse throws std::invalid_argument, naming the element, for an x outside the open (0, 1).
// (In doubles σ(z) rounds to exactly 1 for z > 37, so round trips hold for |z| ≲ 36.)
class Sigmoid : public Bijector {
public:
    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return 0; }
    std::string name() const override { return "Sigmoid"; }
};

// x = logit(z) = log z − log(1 − z): (0,1)^D → R^D, the inverse of Sigmoid (its forward and inverse
// swapped). forward throws std::invalid_argument for a z outside the open (0, 1).
class Logit : public Bijector {
public:
    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return 0; }
    std::string name() const override { return "Logit"; }
};

// The logit preprocessing of docs/theory.md §6 as the last layer of an image flow: the data side is the
// dequantized image x, the latent side y = logit(α + (1 − 2α) x), so Flow::log_prob(x) includes
// Σ log|dy/dx| exactly as the bits-per-dimension formula needs.
//     forward   y → x = (σ(y) − α)/(1 − 2α),   log|det| = Σ_d [log σ(y_d) + log σ(−y_d)] − D log(1 − 2α)
//     inverse   x → y = logit(α + (1 − 2α) x),  log|det| = Σ_d [log(1 − 2α) − log p_d − log(1 − p_d)]
// α = 0 gives Sigmoid. The map is defined where p ∈ (0, 1), i.e. for x in
// (−α/(1 − 2α), (1 − α)/(1 − 2α)) ⊃ [0, 1] when α > 0; inverse throws std::invalid_argument for an x
// outside it.
class LogitPreprocessing : public Bijector {
public:
    // Throws std::invalid_argument unless 0 ≤ α < ½.
    explicit LogitPreprocessing(double alpha = 0.05);
    Transformed forward(const Var& y) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return 0; }
    // "LogitPreprocessing(alpha = 0.05)".
    std::string name() const override;
    double alpha() const { return alpha_; }

private:
    double alpha_;
};

// x = (v + u)/256 with u ~ U(0,1) per element, for pixels v of any shape: a sample of the uniform
// dequantization, so x ∈ [0, 1) and each v owns the cube [v/256, (v + 1)/256).
// Throws std::invalid_argument unless every v is an integer in 0..255 (naming the first that is not).
Tensor dequantize(const Tensor& pixels, Rng& rng);

// Bits per dimension of discrete pixels (docs/theory.md §6):
//     bpd = −(log_p_y + sum_log_det − D log 256) / (D ln 2),
// where log_p_y = log p_y(y) is the model's log-density of the preprocessed image y and sum_log_det
// = Σ log|dy/dx| is the preprocessing's log-det (LogitPreprocessing::inverse). For a whole flow
// ending in LogitPreprocessing, pass log p(x) = Flow::log_prob(x) as log_p_y and 0 as sum_log_det.
// Throws std::invalid_argument for D = 0.
double bits_per_dim(double log_p_y, double sum_log_det, std::size_t dim);
// The same per sample: log_p_y [N], sum_log_det [N] → [N]. Throws unless both are vectors [N] of
// the same length, or for D = 0.
Tensor bits_per_dim(const Tensor& log_p_y, const Tensor& sum_log_det, std::size_t dim);

}  // namespace tapeflow::flows
