// Base distributions for flows: the standard normal, a learnable diagonal normal, a uniform box and a
// logistic, each a product of D independent coordinates. log_prob maps a batch x [N, D] to [N] and is
// differentiable in x and in the parameters; sample draws [n, D] from an explicit Rng.
// Every method throws std::invalid_argument naming the distribution unless x is a non-empty [N, D]
// with the distribution's D.
#pragma once

#include <cstddef>
#include <string>

#include "flows/distribution.hpp"

namespace tapeflow::flows {

// N(0, I_D):  log p(x) = −½ Σ_d x_d² − (D/2) log 2π.
class StandardNormal : public Distribution {
public:
    explicit StandardNormal(std::size_t dim);
    Var log_prob(const Var& x) override;
    Var sample(std::size_t n, Rng& rng) override;  // a constant: nothing to differentiate
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

private:
    std::size_t dim_;
};

// N(μ, diag σ²) with learnable parameters "mean" [D] and "log_std" [D] (σ = exp(log_std), so σ > 0
// without a constraint), initialized to the standard normal:
//     log p(x) = Σ_d [ −½ ((x_d − μ_d)/σ_d)² − log σ_d ] − (D/2) log 2π.
// sample is reparameterized, x = μ + σ ⊙ ε with ε ~ N(0, I), so it is differentiable in μ and σ.
class DiagNormal : public Distribution {
public:
    explicit DiagNormal(std::size_t dim);
    Var log_prob(const Var& x) override;
    Var sample(std::size_t n, Rng& rng) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    Parameter& mean() { return mean_; }
    Parameter& log_std() { return log_std_; }

private:
    std::size_t dim_;
    Parameter& mean_;
    Parameter& log_std_;
};

// Uniform on the box Π_d [lo_d, hi_d]:  log p(x) = −Σ_d log(hi_d − lo_d) inside (boundary included),
// −inf outside, NaN for a NaN coordinate. The density is flat, so d log p/dx = 0 (recorded, so a loss built on it still
// back-propagates). Throws std::invalid_argument unless lo and hi are finite, lo < hi elementwise.
class Uniform : public Distribution {
public:
    // The cube [lo, hi]^D.
    Uniform(std::size_t dim, double lo, double hi);
    // The box with corners lo [D] and hi [D].
    Uniform(const Tensor& lo, const Tensor& hi);
    Var log_prob(const Var& x) override;
    Var sample(std::size_t n, Rng& rng) override;  // lo + (hi − lo) ⊙ U[0, 1)
    std::size_t dim() const override { return lo_.numel(); }
    std::string name() const override;

private:
    Tensor lo_, hi_;
    double log_volume_;
};

// Logistic(μ, s) in every coordinate, with u = (x − μ)/s:
//     log p(x) = Σ_d [ −u_d − 2 softplus(−u_d) ] − D log s
// (the softplus form stays finite for any x; the naive −u − 2 log(1 + e^−u) overflows for u ≪ 0).
// sample inverts the CDF: x = μ + s (log p − log(1 − p)), p ~ U(0, 1).
// Throws std::invalid_argument unless loc is finite and scale > 0 (finite).
class Logistic : public Distribution {
public:
    explicit Logistic(std::size_t dim, double loc = 0.0, double scale = 1.0);
    Var log_prob(const Var& x) override;
    Var sample(std::size_t n, Rng& rng) override;  // a constant
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

private:
    std::size_t dim_;
    double loc_, scale_;
};

}  // namespace tapeflow::flows
