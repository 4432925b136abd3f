// A small, explicit, seedable random number generator (xoshiro256**, seeded through splitmix64).
// Same seed ⇒ the same numbers on every run and every platform: no global state, and no reliance on
// std::normal_distribution, whose algorithm differs between standard libraries.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tensor/tensor.hpp"

namespace tapeflow {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0);

    std::uint64_t next_u64();
    // Uniform on [0, 1) with 53 random bits.
    double uniform();
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Standard normal (Box–Muller; the second value of each pair is kept for the next call).
    double normal();
    // Uniform integer in [0, n); n must be positive.
    std::uint64_t below(std::uint64_t n);
    // An independent stream derived from this one (for data vs. initialization, say).
    Rng split();

private:
    std::array<std::uint64_t, 4> s_{};
    double spare_normal_ = 0;
    bool has_spare_ = false;
};

// N(mean, std²) and U[lo, hi) entries. Throw std::invalid_argument for a non-finite mean or std,
// non-finite bounds or lo > hi.
Tensor randn(const Shape& shape, Rng& rng, double mean = 0.0, double std = 1.0);
Tensor rand(const Shape& shape, Rng& rng, double lo = 0.0, double hi = 1.0);
// A uniformly random permutation of 0..n−1 (Fisher–Yates).
std::vector<std::size_t> random_permutation(std::size_t n, Rng& rng);

}  // namespace tapeflow
