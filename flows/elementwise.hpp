// Elementwise bijectors: maps that act on each coordinate separately, so their Jacobian is diagonal
// and the log-det is a sum over coordinates.
#pragma once

#include <cstddef>
#include <string>

#include "flows/bijector.hpp"

namespace tapeflow::flows {

// x = μ + exp(log σ) ⊙ z with learnable "loc" μ [D] and "log_scale" log σ [D] (σ > 0 without a
// constraint): log|det| = Σ_d log σ_d for every sample; the inverse is z = (x − μ) ⊙ exp(−log σ).
class Affine : public Bijector {
public:
    // The identity: μ = 0, log σ = 0. Throws std::invalid_argument if D = 0.
    explicit Affine(std::size_t dim);
    // Given μ [D] and log σ [D]; throws std::invalid_argument unless both are non-empty vectors of
    // the same shape.
    Affine(const Tensor& loc, const Tensor& log_scale);

    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return dim_; }
    std::string name() const override;

    Parameter& loc() { return loc_; }
    Parameter& log_scale() { return log_scale_; }

private:
    std::size_t dim_;
    Parameter& loc_;
    Parameter& log_scale_;
};

}  // namespace tapeflow::flows
