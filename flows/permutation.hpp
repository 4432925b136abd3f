// Permutation: a fixed reordering of the coordinates, x_j = z_{π(j)}. Volume-preserving
// (|det| = 1, log-det 0) and exactly invertible by the inverse permutation. Between couplings it
// mixes which coordinates are copied and which are transformed (as Glow's reverse/shuffle).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flows/bijector.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

class Permutation : public Bijector {
public:
    // π given as the list (π(0), …, π(D − 1)). Throws std::invalid_argument unless it is a
    // permutation of 0..D−1 with D ≥ 1 (naming the first repeated or out-of-range entry).
    explicit Permutation(std::vector<std::size_t> permutation);

    // A uniformly random permutation of D coordinates drawn from rng (Fisher–Yates).
    // (Returned by pointer: modules are never moved.) Both throw std::invalid_argument for D = 0.
    static std::unique_ptr<Permutation> random(std::size_t dim, Rng& rng);
    // The reversal π(j) = D − 1 − j.
    static std::unique_ptr<Permutation> reverse(std::size_t dim);

    // x = z[:, π], log|det| = 0.
    Transformed forward(const Var& z) override;
    // z = x[:, π⁻¹], log|det| = 0.
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return permutation_.size(); }
    // "Permutation([1, 0])" (up to 16 entries; longer ones give only D).
    std::string name() const override;

    const std::vector<std::size_t>& permutation() const { return permutation_; }
    const std::vector<std::size_t>& inverse_permutation() const { return inverse_; }

private:
    std::vector<std::size_t> permutation_;
    std::vector<std::size_t> inverse_;
};

}  // namespace tapeflow::flows
