// Differentiable shape operations (the Var twins of tensor/shape_ops.hpp). Their backward rules
// move gradients back to where the elements came from; none does arithmetic beyond summing
// gradients of elements that were used twice.
#pragma once

#include <vector>

#include "autograd/var.hpp"

namespace tapeflow {

Var reshape(const Var& a, const Shape& shape, CallSite site = CallSite::current());
Var flatten(const Var& a, CallSite site = CallSite::current());
Var unsqueeze(const Var& a, int axis, CallSite site = CallSite::current());
Var squeeze(const Var& a, int axis, CallSite site = CallSite::current());
Var transpose(const Var& a, CallSite site = CallSite::current());
Var permute(const Var& a, const std::vector<std::size_t>& axes, CallSite site = CallSite::current());
Var narrow(const Var& a, int axis, std::size_t start, std::size_t length, CallSite site = CallSite::current());
Var concat(const std::vector<Var>& parts, int axis, CallSite site = CallSite::current());
std::vector<Var> split(const Var& a, int axis, const std::vector<std::size_t>& sizes, CallSite site = CallSite::current());
std::vector<Var> chunk(const Var& a, std::size_t n, int axis, CallSite site = CallSite::current());
Var index_select(const Var& a, int axis, const std::vector<std::size_t>& indices, CallSite site = CallSite::current());
// The per-row gather of tensor/shape_ops.hpp; indices are constants (whole numbers as doubles). The
// backward scatter-adds each upstream gradient to the entry it was taken from.
Var take_along_axis(const Var& a, const Tensor& indices, int axis, CallSite site = CallSite::current());
Var broadcast_to(const Var& a, const Shape& shape, CallSite site = CallSite::current());

}  // namespace tapeflow
