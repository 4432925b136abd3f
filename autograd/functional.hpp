// Gradients as values: torch.autograd.grad for tapeflow, and the derivatives built from it.
//
//     Tape& tape = Tape::current();
//     Var x = tape.variable(...);
//     Var y = sum(tanh(x) * x);
//     Var g = grad(y, {x}, {.create_graph = true})[0];   // dy/dx, itself on the tape
//     Var h = grad(sum(g * v), {x})[0];                  // (∂²y/∂x²)·v, a Hessian-vector product
//
// With create_graph the reverse sweep runs each op's backward rule over Vars (VarBackward,
// autograd/op.hpp): every multiplication and sum of the backward pass is recorded as an ordinary op, so
// the gradient is a function of the inputs like any other Var. A loss built from it (a gradient
// penalty, the Jacobian trace of a continuous flow) is trained by tape.backward as usual: the gradient
// flows through the recorded backward on to the parameters (docs/theory.md §11). Without
// create_graph the Tensor fast path computes the gradients and they come back as constants.
//
// grad never writes Parameter::grad and never touches the Tensor gradients that tape.backward left
// in the nodes when create_graph is set; without it, it runs the fast sweep, which overwrites them (as
// a second tape.backward would).
//
// Levels. All reverse levels live on one tape: the first derivative's ops are recorded after the
// function's, the second's after those, and so on; tape.clear() drops them all. A Var from a later
// level may be combined freely with earlier ones, but it cannot be an input of a gradient of an earlier
// output: grad(output, inputs) refuses an input recorded after the output (the output cannot depend on
// it; this is a mix-up of levels, not a zero). Under NoGrad nothing is recorded, so create_graph there
// returns constants (no_grad wins, as in PyTorch). Forward levels (jvp) and what may cross them:
// autograd/forward.hpp.
#pragma once

#include <functional>
#include <vector>

#include "autograd/var.hpp"

namespace tapeflow {

struct GradOptions {
    // Record the backward pass on the tape so that the returned gradients can be differentiated again.
    bool create_graph = false;
};

// d output / d inputs[k] for each k, as Vars of the inputs' shapes; output must have one element. An
// input the output does not depend on (or a constant Var) gets zeros. Throws std::invalid_argument for
// an output that depends on nothing recorded or has more than one element, std::logic_error for Vars from another tape or generation
// and, under create_graph, for an op on the path whose backward is not differentiable (its name is in
// the message).
std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, GradOptions options = {});
// The vector–Jacobian product: Σ_i grad_output_i · d output_i / d inputs[k]. grad_output has the
// output's shape.
std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, const Tensor& grad_output,
                      GradOptions options = {});
// As above with a grad_output that is itself a Var (recorded): the result is linear in it and can be
// differentiated with respect to it (the double-vjp construction of a JVP, docs/theory.md §11).
std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, const Var& grad_output,
                      GradOptions options = {});

}  // namespace tapeflow

namespace tapeflow {

using UnaryVarFunction = std::function<Var(const Var&)>;

// A function's value beside one of its derivative products.
struct ValueAndProduct {
    Var value;    // f(x)
    Var product;  // Jᵀu for vjp (x's shape), J·v for jvp (f(x)'s shape)
};

// f(x) and the vector–Jacobian product Jᵀu (u of f(x)'s shape), on x's tape.
ValueAndProduct vjp(const UnaryVarFunction& f, const Var& x, const Tensor& u, GradOptions options = {});
// f(x) and the Jacobian–vector product J·v (v of x's shape), by true forward mode: one pass of f with
// x's tangent set to v, every op's tangent rule run as it is recorded (autograd/forward.hpp,
// docs/theory.md §11); the product is a constant. f's ops are recorded on x's tape even under NoGrad
// (the tangents live there). An op without a tangent rule on the path is refused by name. With
// create_graph the product is recorded instead, so it can be differentiated again: the vjp, with
// respect to its seed, of a recorded vjp (two reverse sweeps, no tangent rules needed).
ValueAndProduct jvp(const UnaryVarFunction& f, const Var& x, const Tensor& v, GradOptions options = {});

// How jacobian builds the matrix: a column per input element (forward: J·e_j, one forward pass
// each), a row per output
// element (reverse: Jᵀe_i), or whichever takes fewer products (automatic: forward when x has fewer
// elements than f(x)).
enum class JacobianMode { forward, reverse, automatic };
// ∂f(x)/∂x with shape f(x).shape ++ x.shape, on a private tape (the caller's is not touched).
Tensor jacobian(const UnaryVarFunction& f, const Tensor& x, JacobianMode mode);

// The Hessian-vector product ∇²f(x)·v of a scalar f (Pearlmutter 1994; docs/theory.md §11).
// reverse_over_reverse: the vjp, seeded with v, of the recorded gradient — one recorded sweep and one
// more. forward_over_reverse: the tangent of the recorded gradient along v — f and its recorded sweep
// run once with x's tangent set to v, no second sweep (with create_graph, the double-vjp jvp instead).
// bench_tape measures both (n = 128, CPU, four runs): reverse-over-reverse 26.9–29.3 µs,
// forward-over-reverse 26.4–29.6 µs (0.92–1.02×; 46–53 µs, 1.6×, when jvp was two reverse sweeps). A
// tie: reverse-over-reverse stays the default, as it also records a differentiable product directly.
enum class HvpMode { reverse_over_reverse, forward_over_reverse };
Var hvp(const UnaryVarFunction& f, const Var& x, const Tensor& v, HvpMode mode = HvpMode::reverse_over_reverse,
        GradOptions options = {});
// ∇²f(x) of a scalar f, shape x.shape ++ x.shape, on a private tape: one reverse sweep of the recorded
// gradient per row.
Tensor hessian(const UnaryVarFunction& f, const Tensor& x);

}  // namespace tapeflow
