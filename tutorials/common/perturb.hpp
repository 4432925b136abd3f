// Moving a fresh flow off the identity for the tutorials' checks. A fresh coupling is the identity
// (its conditioner's last layer starts at zero, docs/theory.md §5), so a round trip or a Jacobian
// checked on it would pass for a wrong inverse or log-det; tutorials 07, 09 and 10 perturb first.
#pragma once

#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::tutorial {

// Adds N(0, std²) noise to every parameter of `module`, in the order of module.parameters().
inline void perturb_parameters(nn::Module& module, Rng& rng, double std) {
    for (Parameter* p : module.parameters()) p->value = p->value + randn(p->value.shape(), rng, 0, std);
}

}  // namespace tapeflow::tutorial
