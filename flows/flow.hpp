// Flow: a base distribution pushed through a stack of bijectors, x = f_K ∘ … ∘ f_1 (z), z ~ p_z
// (docs/theory.md §1). Its density by the change of variables, in either direction:
//
//     log p(x) = log p_z(f⁻¹(x)) + Σ_k log|det J_{f_k⁻¹}|       (inverse pass, for data: forward KL)
//     log q(x) = log p_z(z) − Σ_k log|det J_{f_k}|,  x = f(z)     (forward pass, for samples: reverse KL)
//
// A Flow is itself a Bijector: its forward/inverse are the whole stack's, so the conformance kit
// checks a flow with CHECK_BIJECTOR(flow, points) and a flow can be a layer of another flow. The base
// is not part of the map (forward and inverse never read its parameters); it is what log_prob and
// sample push through the map. A Flow is a Module whose children are named "base", "layers.0",
// "layers.1", …, so its parameters read "layers.3.w" in summaries and checkpoints.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/distribution.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

// Samples and their log-density under the flow: x [n, D], log q(x) [n].
struct FlowSample {
    Var value;
    Var log_prob;
};

class Flow : public Bijector {
public:
    // Takes ownership of the base and the layers (applied first to last in `forward`). Throws
    // std::invalid_argument if the base or a layer is null, or a layer's dim() (unless 0, "any D")
    // differs from the base's, naming the layer index and both dimensions.
    explicit Flow(std::unique_ptr<Distribution> base, std::vector<std::unique_ptr<Bijector>> layers = {});

    // Appends a layer (applied after all the others); same checks as the constructor.
    Flow& add(std::unique_ptr<Bijector> layer);

    // log p(x) for x [N, D] → [N], through the inverse pass; differentiable in x and the parameters.
    Var log_prob(const Var& x);
    // n samples [n, D] under no_grad (plain values, nothing recorded).
    Tensor sample(std::size_t n, Rng& rng);
    // n reparameterized samples and their log q(x) through the forward pass, differentiable in the
    // parameters (the reverse-KL estimator, docs/theory.md §2).
    FlowSample sample_and_log_prob(std::size_t n, Rng& rng);

    // The whole stack as one bijector: z → x with Σ_k log|det J_{f_k}|, and x → z with the inverse
    // log-dets summed (layers in reverse order). Throw unless the input is a non-empty [N, D].
    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;

    std::size_t dim() const override { return base_->dim(); }
    std::size_t size() const { return layers_.size(); }
    Distribution& base() { return *base_; }
    Bijector& layer(std::size_t k);
    std::string name() const override;

private:
    Distribution* base_;
    std::vector<Bijector*> layers_;
};

// log p(x) = log p_z(b⁻¹(x)) + log|det J_{b⁻¹}(x)| for x [N, D] → [N]: the density of the base pushed
// through b (docs/theory.md §1), for a bijector not owned by a Flow. Throws unless x is a non-empty [N, D]
// with the base's D.
Var pushforward_log_prob(Bijector& b, Distribution& base, const Var& x);

}  // namespace tapeflow::flows
