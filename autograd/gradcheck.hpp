// Checking gradients: the full `jacobian`, and `gradcheck`, which compares the tape's analytic
// Jacobian with central finite differences the way PyTorch's gradcheck does. Both record on a private
// tape, so they never disturb the caller's tape. (The functional `grad` is in autograd/functional.hpp.)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/functional.hpp"  // grad, which these build on
#include "autograd/var.hpp"

namespace tapeflow {

using VarFunction = std::function<Var(const std::vector<Var>&)>;

// J[i, j] = d f(x)_i / d x_j over the flattened output and input: shape [f(x).numel(), x.numel()].
// One backward pass per output element.
Tensor jacobian(const std::function<Var(const Var&)>& f, const Tensor& x);

struct GradcheckOptions {
    double eps = 1e-6;   // central-difference step
    double atol = 1e-5;  // pass when |analytic − numeric| ≤ atol + rtol·|numeric|
    double rtol = 1e-3;
    bool check_reentrant = true;      // backward twice must give bit-identical gradients
    bool check_zero_upstream = true;  // a zero seed must give zero gradients
    // Parameters f uses, checked like the inputs (perturbed in place, restored afterwards).
    std::vector<Parameter*> parameters;
};

struct GradcheckResult {
    bool ok = true;
    // Where the worst element is: which input (inputs first, then parameters), which flat element of
    // it, and which flat output element; with both derivative values.
    std::size_t input = 0;
    std::size_t input_element = 0;
    std::size_t output_element = 0;
    double analytic = 0;
    double numeric = 0;
    double error = 0;      // |analytic − numeric|
    double tolerance = 0;  // atol + rtol·|numeric| at that element
    std::string report;    // human-readable verdict; on failure also the recorded tape
    explicit operator bool() const { return ok; }
};

// f maps the inputs (as Vars) to an output of any shape; each output element's gradient is checked
// against central differences with respect to every input element.
GradcheckResult gradcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tapeflow

namespace tapeflow {

// Second derivatives against finite differences of the gradient (as torch.autograd.gradgradcheck):
// with a fixed upstream u of f's output shape, G(x) = Σ_i u_i ∇f_i(x) is computed with create_graph,
// and gradcheck compares the recorded backward of G (second derivatives of f) with central
// differences of G computed by first-order backward passes. Options as for gradcheck; the
// parameters given there are checked too. Fails with the op's name when an op on the path has no
// differentiable backward (the error is in the report).
GradcheckResult gradgradcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

// The JVP check: J·v by true forward mode (every op's tangent rule, autograd/forward.hpp) against the
// central difference (f(x + eps·v) − f(x − eps·v)) / 2eps along the tangents v (one per input, of its
// shape). An op on the path without a tangent rule fails the check with its name in the report.
GradcheckResult jvpcheck(const VarFunction& f, const std::vector<Tensor>& inputs, const std::vector<Tensor>& tangents,
                         const GradcheckOptions& options = {});

}  // namespace tapeflow
