// Operations that rearrange elements without computing new values. Each returns a new tensor
// (reshape-like ops share storage, since tensors are always contiguous).
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace tapeflow {

Tensor reshape(const Tensor& a, const Shape& shape);
Tensor flatten(const Tensor& a);  // to 1-D
// Inserts / removes a size-1 axis.
Tensor unsqueeze(const Tensor& a, int axis);
Tensor squeeze(const Tensor& a, int axis);
// Swaps the last two axes (the matrix transpose for 2-D tensors).
Tensor transpose(const Tensor& a);
// Reorders axes: result axis i is input axis axes[i]; `axes` must be a permutation of 0..rank-1.
Tensor permute(const Tensor& a, const std::vector<std::size_t>& axes);
// Elements [start, start + length) along `axis`.
Tensor narrow(const Tensor& a, int axis, std::size_t start, std::size_t length);
// Joins tensors whose shapes agree except along `axis`.
Tensor concat(const std::vector<Tensor>& parts, int axis);
// Consecutive pieces along `axis` with the given sizes (which must add up to the axis length).
std::vector<Tensor> split(const Tensor& a, int axis, const std::vector<std::size_t>& sizes);
// `n` nearly equal pieces along `axis` (the last may be smaller), as torch.chunk.
std::vector<Tensor> chunk(const Tensor& a, std::size_t n, int axis);
// Picks the entries `indices` along `axis`, in that order (used by permutation bijectors).
Tensor index_select(const Tensor& a, int axis, const std::vector<std::size_t>& indices);
// Picks, along `axis`, a different entry for every position (numpy.take_along_axis):
// out[…, j, …] = a[…, indices[…, j, …], …]. `indices` holds whole numbers (as doubles) in
// [0, a.size(axis)), has a's rank and a's sizes on every other axis; its size along `axis` is the
// number picked per row. The per-row gather of a spline's bin parameters.
Tensor take_along_axis(const Tensor& a, const Tensor& indices, int axis);
// Materializes NumPy broadcasting of `a` to `shape`.
Tensor broadcast_to(const Tensor& a, const Shape& shape);

}  // namespace tapeflow
