// Bijector: an invertible, differentiable map with a tractable Jacobian determinant.
//
// Direction convention (docs/theory.md §1, x = f(z)): `forward` maps the base/latent side z to the data
// side x; `inverse` maps x back to z. Both act on a batch [N, D] and return the transformed batch
// together with the per-sample log|det J| of the map they apply (shape [N]):
//
//     forward(z) = (x = f(z),   log|det ∂f/∂z|)
//     inverse(x) = (z = f⁻¹(x), log|det ∂f⁻¹/∂x|) = (z, −log|det ∂f/∂z| at z)
//
// A bijector is a Module: its parameters are trained, clipped and checkpointed like any other.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "autograd/var.hpp"
#include "nn/module.hpp"

namespace tapeflow::flows {

struct Transformed {
    Var value;                 // [N, D]
    Var log_abs_det_jacobian;  // [N]
};

class Bijector : public nn::Module {
public:
    virtual Transformed forward(const Var& z) = 0;
    virtual Transformed inverse(const Var& x) = 0;
    // The event dimension D it acts on (0 when any D works, e.g. an elementwise map).
    virtual std::size_t dim() const = 0;
};

// Throws naming `who` unless v is a batch [N, D] with N ≥ 1 and (when dim ≠ 0) the expected D.
void require_batch(const Var& v, std::size_t dim, const std::string& who);

// A chain of `count` maps applied to `input` in the order step(0, ·), step(1, ·), …: the value goes
// through each and the log-dets add (docs/theory.md §1); no steps is the identity with log-det 0 [N].
Transformed compose(const Var& input, std::size_t count,
                    const std::function<Transformed(std::size_t k, const Var& value)>& step);

}  // namespace tapeflow::flows
