#include "autograd/functional.hpp"

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
