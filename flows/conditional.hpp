// Conditional bijectors and flows: a map x = f(z; c) and a density p(x | c) that depend on a
// context c ∈ R^C given with each sample (a class, a rotation angle, an observation), as nflows'
// and zuko's conditional flows (Winkler et al. 2019, "Learning likelihoods with conditional
// normalizing flows"). For every fixed c, f(·; c) is an ordinary bijector, so
//
//     log p(x | c) = log p_z(f⁻¹(x; c)) + log|det J_{f⁻¹(·; c)}(x)|
//
// and one network learns the whole family at once instead of one flow per context. Contexts come as
// a batch [N, C], one row per sample; the conditioners (coupling, spline, MADE) take c as an extra
// input and nothing else changes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flows/bijector.hpp"
#include "flows/distribution.hpp"
#include "flows/flow.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

// A bijector with a context. It is also a Bijector: with context_dim() = 0 the one-argument
// forward/inverse are the map itself; with a context they throw (the map is not defined without c).
// A derived class overrides the two-argument pair and adds `using ConditionalBijector::forward;`
// and `using ConditionalBijector::inverse;` to keep the one-argument ones visible.
class ConditionalBijector : public Bijector {
public:
    // z [N, D], context [N, C] (an undefined Var when context_dim() = 0) → x [N, D] and log|det| [N].
    virtual Transformed forward(const Var& z, const Var& context) = 0;
    virtual Transformed inverse(const Var& x, const Var& context) = 0;
    virtual std::size_t context_dim() const = 0;

    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
};

// Throws naming `who` unless `context` fits a batch of n samples: [n, C] with C = context_dim (or
// undefined when context_dim = 0).
void require_context(const Var& context, std::size_t n, std::size_t context_dim, const std::string& who);

// One member of the family, f(·; c) at a fixed context c [C] or [1, C], as a plain Bijector: the
// conformance kit checks a conditional bijector through it, and a figure draws one context with it.
// It refers to `b` (which must outlive it) and owns no parameters: check_conditional_bijector and
// the kit read b's (flows/conformance.hpp).
class AtContext : public Bijector {
public:
    // Throws std::invalid_argument unless c has C = b.context_dim() > 0 entries and is finite.
    AtContext(ConditionalBijector& b, const Tensor& context);
    Transformed forward(const Var& z) override;
    Transformed inverse(const Var& x) override;
    std::size_t dim() const override { return b_.dim(); }
    // "AffineAutoregressive(…) at c = [0.5]".
    std::string name() const override;
    ConditionalBijector& conditional() { return b_; }
    const Tensor& context() const { return context_; }

private:
    Var rows(std::size_t n) const;  // c repeated n times, [n, C]
    ConditionalBijector& b_;
    Tensor context_;  // [1, C]
};

// A base distribution pushed through a stack of layers, each either a ConditionalBijector (given
// the context) or a plain Bijector (a permutation, an elementwise map: applied as it is).
class ConditionalFlow : public nn::Module {
public:
    // Throws std::invalid_argument for a null base or layer, a layer whose dim() (unless 0) differs
    // from the base's, context_dim = 0 (use Flow), or a conditional layer with another context_dim.
    ConditionalFlow(std::unique_ptr<Distribution> base, std::size_t context_dim,
                    std::vector<std::unique_ptr<Bijector>> layers = {});
    ConditionalFlow& add(std::unique_ptr<Bijector> layer);

    // log p(x | c) for x [N, D], c [N, C] → [N], through the inverse pass.
    Var log_prob(const Var& x, const Var& context);
    // n samples at one context c [C] (or [1, C]), or at a batch of contexts [n, C] (one per sample),
    // under no_grad.
    Tensor sample(std::size_t n, const Tensor& context, Rng& rng);
    // n reparameterized samples at the context(s) and their log q(x | c), through the forward pass.
    FlowSample sample_and_log_prob(std::size_t n, const Tensor& context, Rng& rng);

    Transformed forward(const Var& z, const Var& context);
    Transformed inverse(const Var& x, const Var& context);

    std::size_t dim() const { return base_->dim(); }
    std::size_t context_dim() const { return context_dim_; }
    std::size_t size() const { return layers_.size(); }
    Distribution& base() { return *base_; }
    Bijector& layer(std::size_t k);
    std::string name() const override;

private:
    Var contexts_for(std::size_t n, const Tensor& context, const char* who) const;
    Distribution* base_;
    std::size_t context_dim_;
    std::vector<Bijector*> layers_;
};

}  // namespace tapeflow::flows
