// Differentiable reductions (the Var twins of tensor/reduce.hpp).
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var sum(const Var& a, CallSite site = CallSite::current());
Var sum(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
Var mean(const Var& a, CallSite site = CallSite::current());
Var mean(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
// The gradient of max/min is shared evenly among tied extreme entries.
Var max(const Var& a, CallSite site = CallSite::current());
Var max(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
Var min(const Var& a, CallSite site = CallSite::current());
Var min(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
Var logsumexp(const Var& a, CallSite site = CallSite::current());
Var logsumexp(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());

}  // namespace tapeflow
