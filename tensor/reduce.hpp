// Reductions over all elements or along one axis. With keepdim the reduced axis stays as size 1,
// so the result broadcasts against the input (as in NumPy/PyTorch).
#pragma once

#include "tensor/tensor.hpp"

namespace tapeflow {

Tensor sum(const Tensor& a);  // 0-d
Tensor sum(const Tensor& a, int axis, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, int axis, bool keepdim = false);
Tensor max(const Tensor& a);
Tensor max(const Tensor& a, int axis, bool keepdim = false);
Tensor min(const Tensor& a);
Tensor min(const Tensor& a, int axis, bool keepdim = false);
// Index of the first maximum along the axis (as doubles; exact below 2⁵³).
Tensor argmax(const Tensor& a, int axis, bool keepdim = false);
// log Σ exp(a), computed as m + log Σ exp(a − m) with m the maximum; −inf if every entry is −inf.
Tensor logsumexp(const Tensor& a);
Tensor logsumexp(const Tensor& a, int axis, bool keepdim = false);

// Running sums along the axis: out[…, k, …] = Σ_{j ≤ k} a[…, j, …] (numpy.cumsum with an axis).
Tensor cumsum(const Tensor& a, int axis);
// The Euclidean norm of each vector along the axis, √Σ a², scaled by the largest |a| first so that
// neither 1e200 nor 1e-200 entries overflow or underflow in the squares (as hypot does).
Tensor norm(const Tensor& a, int axis, bool keepdim = false);

// The reverse of broadcasting: sums `a` over the axes along which `shape` was broadcast to
// a.shape(). Every backward rule of a broadcasting op uses this one helper. When the shapes already
// agree it returns `a` itself (shared storage, no copy).
Tensor sum_to(const Tensor& a, const Shape& shape);

}  // namespace tapeflow
