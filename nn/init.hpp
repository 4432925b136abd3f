// Deterministic weight initialization: every scheme draws from an explicit Rng, so the same seed
// gives bit-identical weights on every run (nothing reads global state).
//
// The schemes, with fan_in / fan_out the number of inputs / outputs of the layer:
//   kaiming_uniform(a)  U(−b, b), b = gain·√(3 / fan_in), gain = √(2 / (1 + a²))   (He et al. 2015)
//                       With a = √5 (the default) b = 1/√fan_in: PyTorch's nn.Linear default.
//   xavier_uniform      U(−b, b), b = gain·√(6 / (fan_in + fan_out))               (Glorot & Bengio 2010)
//   xavier_normal       N(0, σ²), σ = gain·√(2 / (fan_in + fan_out))
//   normal(σ)           N(0, σ²)
//   zeros               0
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::nn {

// Which scheme to use, with its one parameter. Build one with the factories:
// `Init::xavier_uniform()`, `Init::normal(0.01)`.
struct Init {
    enum class Kind { kaiming_uniform, xavier_uniform, xavier_normal, normal, zeros };

    Kind kind = Kind::kaiming_uniform;
    // kaiming_uniform: the negative slope a; xavier_*: the gain; normal: σ; zeros: unused.
    double parameter = std::sqrt(5.0);

    static Init kaiming_uniform(double a = std::sqrt(5.0)) { return {Kind::kaiming_uniform, a}; }
    static Init xavier_uniform(double gain = 1.0) { return {Kind::xavier_uniform, gain}; }
    static Init xavier_normal(double gain = 1.0) { return {Kind::xavier_normal, gain}; }
    static Init normal(double std) { return {Kind::normal, std}; }
    static Init zeros() { return {Kind::zeros, 0.0}; }

    // "kaiming_uniform(a=2.23607)", "normal(std=0.01)", "zeros".
    std::string str() const;
};

// A tensor of the given shape drawn from the scheme. fan_in and fan_out must be positive for the
// schemes that use them; a negative or non-finite parameter (gain, σ) throws std::invalid_argument.
Tensor initialize(const Init& init, const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng);

// The schemes one by one (same formulas as above).
Tensor kaiming_uniform(const Shape& shape, std::size_t fan_in, Rng& rng, double a = std::sqrt(5.0));
Tensor xavier_uniform(const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng, double gain = 1.0);
Tensor xavier_normal(const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng, double gain = 1.0);
Tensor normal(const Shape& shape, double std, Rng& rng);
Tensor zeros(const Shape& shape);

// The bound b = gain·√(3 / fan_in) of kaiming_uniform (1/√fan_in for a = √5).
double kaiming_uniform_bound(std::size_t fan_in, double a = std::sqrt(5.0));

}  // namespace tapeflow::nn
