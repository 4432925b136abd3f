// Differentiable reductions (the Var twins of tensor/reduce.hpp).
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var sum(const Var& a, CallSite site = CallSite::current());
Var sum(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
// Sums a broadcast operand's gradient back to `shape` (tensor/reduce.hpp sum_to); its backward is
// broadcast_to. The recorded backward (create_graph) undoes broadcasting with it.
Var sum_to(const Var& a, const Shape& shape, CallSite site = CallSite::current());
Var mean(const Var& a, CallSite site = CallSite::current());
Var mean(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
// The gradient of max/min is shared evenly among tied extreme entries.
Var max(const Var& a, CallSite site = CallSite::current());
Var max(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
Var min(const Var& a, CallSite site = CallSite::current());
Var min(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
Var logsumexp(const Var& a, CallSite site = CallSite::current());
Var logsumexp(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());

// e^{a_i} / Σ_j e^{a_j} along the axis, computed as e^{a − logsumexp(a)} so no exponential overflows.
// A slice that is all −inf has no softmax (NaN), as in PyTorch.
Var softmax(const Var& a, int axis, CallSite site = CallSite::current());
// a − logsumexp(a) along the axis: the log of the softmax without its underflow to log 0.
Var log_softmax(const Var& a, int axis, CallSite site = CallSite::current());
// Running sums along the axis (tensor/reduce.hpp); the gradient is the running sum from the far end.
Var cumsum(const Var& a, int axis, CallSite site = CallSite::current());
// The Euclidean norm along the axis. Its gradient a/‖a‖ has no limit at a = 0; there it is taken as 0
// (a subgradient, as PyTorch), so a zero vector in a batch does not turn the batch's gradient into NaN.
Var norm(const Var& a, int axis, bool keepdim = false, CallSite site = CallSite::current());
// log(eᵃ + eᵇ) elementwise with broadcasting (stable::log_add_exp): the log-density of a two-component
// mixture. Each input's share of the gradient is its posterior weight e^{a − out}, 0 when both are −inf.
Var log_add_exp(const Var& a, const Var& b, CallSite site = CallSite::current());

}  // namespace tapeflow
