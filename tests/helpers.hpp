// Helpers the test files share (one home instead of a copy per file). Header-only: each test
// executable links only its own layer, and a function here that it does not call is never emitted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/planar.hpp"
#include "nn/module.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::testing {

// A tensor's entries in row-major order, for comparing against a literal list.
inline std::vector<double> values(const Tensor& t) { return t.to_vector(); }

// The dotted names of a module's parameters in registration order ("0.weight", "layers.1.u", …).
inline std::vector<std::string> parameter_names(const nn::Module& m) {
    std::vector<std::string> names;
    for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
    return names;
}

// Every parameter redrawn from N(0, std²): a zero-initialized layer (the identity) would hide what
// a test looks for.
inline void randomize_parameters(nn::Module& m, Rng& rng, double std) {
    for (Parameter* p : m.parameters()) p->value = randn(p->value.shape(), rng, 0.0, std);
}

// Per-column sample mean and (biased) variance of a batch x [N, D], each [D].
struct ColumnMoments {
    Tensor mean, var;
};
inline ColumnMoments column_moments(const Tensor& x) {
    const Tensor m = tapeflow::mean(x, 0);
    const Tensor c = x - m;
    return {m, tapeflow::mean(c * c, 0)};
}

// N(0, I_d) pushed through k planar layers drawn from `seed`.
inline std::unique_ptr<flows::Flow> planar_flow(std::size_t d, std::size_t k, std::uint64_t seed,
                                                flows::PlanarOptions options = {}) {
    Rng rng(seed);
    auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(d));
    for (std::size_t i = 0; i < k; ++i) flow->add(std::make_unique<flows::Planar>(d, rng, options));
    return flow;
}

}  // namespace tapeflow::testing
