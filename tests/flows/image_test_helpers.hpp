// Shared by the tests of the image bijectors: random parameters for a freshly built model (whose
// couplings start as the identity, which would test nothing).
#pragma once

#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows::testing {

// Every parameter N(0, std²), except weight-normalization lengths ("….g") and coupling scales
// ("scale"), drawn in [0.5, 1.5] so no convolution has a zero weight, and biases, N(0, (std/6)²), so
// that a bias cannot push a whole channel below a ReLU's kink on a tiny image (which would leave the
// layers before it without a gradient). Then evaluation mode, so batch normalization inside
// conditioners uses its running averages and samples stay independent.
inline void randomize(nn::Module& m, Rng& rng, double std = 0.3) {
    for (auto& [name, p] : m.named_parameters()) {
        const bool positive = name.ends_with(".g") || name == "g" || name.ends_with("scale");
        const double spread = name.ends_with("bias") ? std / 6 : std;
        p->value = positive ? rand(p->shape(), rng, 0.5, 1.5) : randn(p->shape(), rng, 0.0, spread);
    }
    m.eval();
}

}  // namespace tapeflow::flows::testing
