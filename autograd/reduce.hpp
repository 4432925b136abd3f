// Differentiable reductions (the Var twins of tensor/reduce.hpp).
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var sum(const Var& a);
Var sum(const Var& a, int axis, bool keepdim = false);
Var mean(const Var& a);
Var mean(const Var& a, int axis, bool keepdim = false);
// The gradient of max/min is shared evenly among tied extreme entries.
Var max(const Var& a);
Var max(const Var& a, int axis, bool keepdim = false);
Var min(const Var& a);
Var min(const Var& a, int axis, bool keepdim = false);
Var logsumexp(const Var& a);
Var logsumexp(const Var& a, int axis, bool keepdim = false);

}  // namespace tapeflow
