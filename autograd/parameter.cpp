#include "autograd/parameter.hpp"

#include "autograd/var.hpp"

namespace tapeflow {

Parameter::Parameter(Tensor initial) : value(std::move(initial)), grad(Tensor::zeros(value.shape())) {}

void Parameter::zero_grad() {
    if (grad.defined() && grad.shape() == value.shape()) grad.fill(0.0);
    else grad = Tensor::zeros(value.shape());
}

Var Parameter::var() {
    require_defined(value, "Parameter::var");
    if (!grad_enabled()) return Var(value);
    return Tape::current().parameter(*this);
}

}  // namespace tapeflow
