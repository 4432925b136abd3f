#include "autograd/functional.hpp"

#include "autograd/forward.hpp"

#include <algorithm>
#include <span>
#include <stdexcept>

#include "tensor/format.hpp"

namespace tapeflow {

namespace {
void require_output(const Var& output, const char* what) {
    if (!output.value().defined()) throw std::invalid_argument(fmt::format("{}: the output is an empty Var", what));
    if (!output.requires_grad())
        throw std::invalid_argument(fmt::format(
            "{}: the output does not depend on any recorded variable (a constant, or computed under NoGrad)", what));
}
}  // namespace

std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, GradOptions options) {
    require_output(output, "grad");
    if (output.numel() != 1)
        throw std::invalid_argument(fmt::format(
            "grad: the output must have one element, got shape {}; pass grad_output for a vector-Jacobian product",
            output.shape()));
    return grad(output, inputs, Tensor::ones(output.shape()), options);
}

std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, const Tensor& grad_output,
                      GradOptions options) {
    require_defined(grad_output, "grad");
    return grad(output, inputs, Var(grad_output), options);
}

std::vector<Var> grad(const Var& output, const std::vector<Var>& inputs, const Var& grad_output,
                      GradOptions options) {
    require_output(output, "grad");
    if (!(grad_output.shape() == output.shape()))
        throw std::invalid_argument(fmt::format("grad: grad_output shape {} differs from the output's shape {}",
                                                grad_output.shape(), output.shape()));
    Tape& tape = *output.tape();
    // An input recorded after the output (a Var of a later level: a gradient taken from it, say) cannot
    // be something the output was computed from; it is a mix-up of levels, not a zero gradient.
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].requires_grad() && inputs[k].tape_id() == tape.id() && inputs[k].index() > output.index())
            throw std::logic_error(fmt::format(
                "grad: input {} ('{}', node #{}) was recorded after the output ('{}', node #{}), so the output "
                "cannot depend on it; pass the Vars the output was computed from (autograd/functional.hpp, Levels)",
                k, tape.node(inputs[k].index()).op, inputs[k].index(), tape.node(output.index()).op, output.index()));
    if (options.create_graph) return tape.differentiate(output, grad_output, inputs);
    for (const Var& in : inputs)
        if (in.requires_grad()) tape.check(in, "grad");
    tape.backward(output, grad_output.value(), /*accumulate_into_parameters=*/false);
    std::vector<Var> out;
    out.reserve(inputs.size());
    for (const Var& in : inputs) out.push_back(Var(in.requires_grad() ? tape.grad(in) : Tensor::zeros(in.shape())));
    return out;
}

}  // namespace tapeflow

namespace tapeflow {

namespace {
// A scalar's gradient as a recorded Var, with the input named in the error.
Var recorded_gradient(const Var& y, const Var& x, const char* what) {
    if (y.numel() != 1)
        throw std::invalid_argument(fmt::format("{}: f must return one element, got shape {}", what, y.shape()));
    if (!y.requires_grad()) return Var(Tensor::zeros(x.shape()));
    return grad(y, {x}, {.create_graph = true})[0];
}

void require_shape(const Tensor& t, const Shape& shape, const char* what, const char* name) {
    require_defined(t, what);
    if (!(t.shape() == shape))
        throw std::invalid_argument(fmt::format("{}: {} has shape {}, expected {}", what, name, t.shape(), shape));
}

// g(u) = Jᵀu recorded with a seed leaf u, so that J·v = the vjp of g with respect to u, seeded with v.
struct Transposed {
    Var seed;  // u, a leaf on the tape
    Var vjp;   // Jᵀu
};
Transposed transposed(const Var& y, const Var& x) {
    Tape& tape = *x.tape();
    const Var u = tape.variable(Tensor::zeros(y.shape()));
    const Var g = y.requires_grad() ? grad(y, {x}, u, {.create_graph = true})[0] : Var(Tensor::zeros(x.shape()));
    return {u, g};
}

Shape joined(const Shape& a, const Shape& b) {
    std::vector<std::size_t> dims;
    for (std::size_t i = 0; i < a.rank(); ++i) dims.push_back(a[i]);
    for (std::size_t i = 0; i < b.rank(); ++i) dims.push_back(b[i]);
    return Shape(std::span<const std::size_t>(dims));
}
}  // namespace

ValueAndProduct vjp(const UnaryVarFunction& f, const Var& x, const Tensor& u, GradOptions options) {
    if (!x.requires_grad()) throw std::invalid_argument("vjp: x must be recorded on a tape (tape.variable)");
    const Var y = f(x);
    require_shape(u, y.shape(), "vjp", "u");
    if (!y.requires_grad()) return {y, Var(Tensor::zeros(x.shape()))};
    return {y, grad(y, {x}, u, options)[0]};
}

ValueAndProduct jvp(const UnaryVarFunction& f, const Var& x, const Tensor& v, GradOptions options) {
    if (!x.requires_grad()) throw std::invalid_argument("jvp: x must be recorded on a tape (tape.variable)");
    require_shape(v, x.shape(), "jvp", "v");
    if (options.create_graph) {
        // A differentiable J·v: the vjp, with respect to its seed, of a recorded vjp (docs/theory.md §11).
        const Var y = f(x);
        const Transposed t = transposed(y, x);
        if (!t.vjp.requires_grad()) return {y, Var(Tensor::zeros(y.shape()))};
        return {y, grad(t.vjp, {t.seed}, v, options)[0]};
    }
    // True forward mode: one pass of f with x's tangent set to v; each op's tangent rule runs as it is
    // recorded. Recording is on even under NoGrad: the tangents live beside the recorded values.
    EnableGrad on;
    ForwardLevel level(*x.tape());
    level.seed(x, v);
    const Var y = f(x);
    return {y, Var(level.tangent(y))};
}

Tensor jacobian(const UnaryVarFunction& f, const Tensor& x, JacobianMode mode) {
    require_defined(x, "jacobian");
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    const Var y = f(xv);
    const std::size_t m = y.numel(), n = x.numel();
    Tensor J = Tensor::zeros(Shape{m, n});
    if (y.requires_grad()) {
        const bool forward = mode == JacobianMode::forward || (mode == JacobianMode::automatic && n < m);
        if (forward) {
            // One forward pass per column: J·e_j by the tangents (the tape is cleared between passes).
            Tensor e = Tensor::zeros(x.shape());
            for (std::size_t j = 0; j < n; ++j) {
                tape.clear();
                const Var xj = tape.variable(x.clone());
                e[j] = 1;
                Tensor column;
                {
                    ForwardLevel level(tape);
                    level.seed(xj, e);
                    column = level.tangent(f(xj));
                }
                e[j] = 0;
                for (std::size_t i = 0; i < m; ++i) J[i * n + j] = column[i];
            }
        } else {
            Tensor e = Tensor::zeros(y.shape());
            for (std::size_t i = 0; i < m; ++i) {
                e[i] = 1;
                const Tensor row = grad(y, {xv}, e)[0].value();
                e[i] = 0;
                std::copy_n(row.data(), n, J.data() + i * n);
            }
        }
    }
    return J.reshape(joined(y.shape(), x.shape()));
}

Var hvp(const UnaryVarFunction& f, const Var& x, const Tensor& v, HvpMode mode, GradOptions options) {
    if (!x.requires_grad()) throw std::invalid_argument("hvp: x must be recorded on a tape (tape.variable)");
    require_shape(v, x.shape(), "hvp", "v");
    // Forward-over-reverse: the tangent of the recorded gradient along v — one forward pass of f and one
    // recorded reverse sweep, both carrying tangents (with create_graph, jvp's double-vjp instead).
    if (mode == HvpMode::forward_over_reverse)
        return jvp([&f](const Var& z) { return recorded_gradient(f(z), z, "hvp"); }, x, v, options).product;
    const Var g = recorded_gradient(f(x), x, "hvp");
    if (!g.requires_grad()) return Var(Tensor::zeros(x.shape()));
    return grad(g, {x}, v, options)[0];
}

Tensor hessian(const UnaryVarFunction& f, const Tensor& x) {
    require_defined(x, "hessian");
    Tape tape;
    TapeScope scope(tape);
    const Var xv = tape.variable(x.clone());
    const Var g = recorded_gradient(f(xv), xv, "hessian");
    const std::size_t n = x.numel();
    Tensor H = Tensor::zeros(Shape{n, n});
    Tensor e = Tensor::zeros(x.shape());
    for (std::size_t i = 0; i < n && g.requires_grad(); ++i) {
        e[i] = 1;
        const Tensor row = grad(g, {xv}, e)[0].value();
        e[i] = 0;
        std::copy_n(row.data(), n, H.data() + i * n);
    }
    return H.reshape(joined(x.shape(), x.shape()));
}

}  // namespace tapeflow
