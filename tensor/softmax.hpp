// Softmax and log-softmax along one axis, and their vector-Jacobian products, each one pass per row.
//
// softmax(a)_j = e^{a_j − m} / Σ_k e^{a_k − m} with m the row's maximum, so no exponential overflows
// (the shift cancels); log_softmax(a)_j = a_j − m − log Σ_k e^{a_k − m}. A row whose maximum is ±inf is
// shifted by 0 instead (as logsumexp, tensor/reduce.hpp), so an all −inf row gives NaN (no mass to
// share out, as in PyTorch) and a +inf entry gives NaN there and 0 elsewhere. Defined in reduce.cpp,
// beside logsumexp, on the same view of an axis.
#pragma once

#include "tensor/tensor.hpp"

namespace tapeflow {

Tensor softmax(const Tensor& a, int axis);
Tensor log_softmax(const Tensor& a, int axis);

// Given s = softmax(a) and the upstream gradient g (same shape): s ⊙ (g − Σ_j g_j s_j), the Jacobian
// diag(s) − s sᵀ of each row applied to g.
Tensor softmax_backward(const Tensor& s, const Tensor& g, int axis);
// Given y = log_softmax(a) and g: g − e^y Σ_j g_j, the Jacobian I − 1 (e^y)ᵀ of each row applied to g.
Tensor log_softmax_backward(const Tensor& y, const Tensor& g, int axis);

}  // namespace tapeflow
