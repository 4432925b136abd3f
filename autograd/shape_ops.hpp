// Differentiable shape operations (the Var twins of tensor/shape_ops.hpp). Their backward rules
// move gradients back to where the elements came from; none does arithmetic beyond summing
// gradients of elements that were used twice.
#pragma once

#include <vector>

#include "autograd/var.hpp"

namespace tapeflow {

Var reshape(const Var& a, const Shape& shape);
Var flatten(const Var& a);
Var unsqueeze(const Var& a, int axis);
Var squeeze(const Var& a, int axis);
Var transpose(const Var& a);
Var permute(const Var& a, const std::vector<std::size_t>& axes);
Var narrow(const Var& a, int axis, std::size_t start, std::size_t length);
Var concat(const std::vector<Var>& parts, int axis);
std::vector<Var> split(const Var& a, int axis, const std::vector<std::size_t>& sizes);
std::vector<Var> chunk(const Var& a, std::size_t n, int axis);
Var index_select(const Var& a, int axis, const std::vector<std::size_t>& indices);
Var broadcast_to(const Var& a, const Shape& shape);

}  // namespace tapeflow
