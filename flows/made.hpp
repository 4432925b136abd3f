// MADE, the masked autoencoder for distribution estimation (Germain et al. 2015, Sec. 4): an MLP
// whose weight matrices are multiplied by fixed 0/1 masks so that output d depends on the inputs
// x_1 … x_{d−1} only. It computes the parameters of all D conditionals p(x_d | x_{<d}) in one pass,
// which is what makes a masked autoregressive flow's density one pass (flows/autoregressive.hpp).
//
// The masks come from degrees (Germain et al., eqs. 12-13): input d has degree m(d) = d (1-based),
// hidden unit k of every layer has degree m(k) = 1 + (k mod max(1, D − 1)) (so every degree in
// 1 … D − 1 is used and the layers stay full), and
//
//     into a hidden unit k:  M[j, k] = 1  iff  m(k) ≥ m(j)      (j an input or a unit below)
//     into output d:         M[k, d] = 1  iff  m(d) >  m(k)      (strictly: x_d never sees itself)
//
// so a path from input j to output d exists only through degrees j ≤ … < d: ∂out_d/∂x_j = 0 for
// j ≥ d, the Jacobian of every output block is strictly lower triangular. Output 1 sees no hidden
// unit: its parameters are the last layer's bias alone (so for D = 1 without a context every weight
// is masked and the MADE is a constant: an elementwise Affine is the same map).
//
// A context c (conditional flows, flows/conditional.hpp) has degree 0, below every input's, so it
// may feed every unit: each layer gets an unmasked weight from c, and the hidden degrees cycle over
// 0 … D − 1 instead, m(k) = k mod D. The units of degree 0 see c alone and feed every output, so
// even output 1 is a nonlinear function of c.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "autograd/var.hpp"
#include "nn/activation.hpp"
#include "nn/linear.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

struct MADEOptions {
    std::vector<std::size_t> hidden = {64, 64};
    std::size_t params_per_dim = 2;  // outputs per coordinate (2 for an affine step: shift, log-scale)
    std::size_t context_dim = 0;     // C: the width of a context c [N, C] given to every forward
    nn::Activation activation = nn::Activation::relu;
    // The last layer starts at zero (weight and bias), so every output is 0 until training moves it.
    bool zero_init_last = true;
};

class MADE : public nn::Module {
public:
    // Children "layers.0" … (nn::Linear, one per mask) and, with a context, "context.0" … (C → that
    // layer's width, no bias). Throws std::invalid_argument for D = 0, a zero hidden size or
    // params_per_dim = 0.
    MADE(std::size_t dim, Rng& rng, MADEOptions options = {});

    // x [N, D] (and c [N, C] when context_dim > 0; an undefined Var otherwise) → [N, P·D]. Column
    // p·D + d is parameter p of coordinate d (use narrow(out, 1, p·D, D) for parameter p of all
    // coordinates) and depends on x_1 … x_{d−1} and c only. Throws std::invalid_argument for an x
    // or c of the wrong shape, naming both.
    Var forward(const Var& x, const Var& context = Var());

    std::size_t dim() const { return dim_; }
    std::size_t params_per_dim() const { return params_per_dim_; }
    std::size_t context_dim() const { return context_dim_; }
    // The masks [in, out] of the layers, input side first; the last one's out is P·D.
    const std::vector<Tensor>& masks() const { return masks_; }
    // The degrees of each hidden layer's units (for the tutorial's printout).
    const std::vector<std::vector<std::size_t>>& hidden_degrees() const { return degrees_; }
    // How many times forward ran since construction: a density pass of a MAF costs 1, a sampling
    // pass D (the tests and tutorial 11 count them).
    std::size_t calls() const { return calls_; }
    // "MADE(2 → 64 → 64 → 2×2)", with " + context 1" when conditional.
    std::string name() const override;

private:
    std::size_t dim_, params_per_dim_, context_dim_;
    nn::Activation activation_;
    std::vector<nn::Linear*> layers_;
    std::vector<nn::Linear*> context_;
    std::vector<Tensor> masks_;
    std::vector<std::vector<std::size_t>> degrees_;
    std::size_t calls_ = 0;
};

}  // namespace tapeflow::flows
