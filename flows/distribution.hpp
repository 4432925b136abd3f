// Base distributions of a flow: a log-density and a sampler over batches [N, D].
#pragma once

#include <cstddef>
#include <string>

#include "autograd/var.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

class Distribution : public nn::Module {
public:
    // log p(x) per sample: x [N, D] → [N]. Differentiable in x and in the parameters.
    virtual Var log_prob(const Var& x) = 0;
    // n samples [n, D]; reparameterized (differentiable in the parameters) where the family allows.
    virtual Var sample(std::size_t n, Rng& rng) = 0;
    virtual std::size_t dim() const = 0;
};

}  // namespace tapeflow::flows
