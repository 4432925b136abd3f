// Binary search in sorted sequences: which bin each value falls in (the bin lookup of a spline).
// Not differentiable: the result is a whole number, piecewise constant in the values.
#pragma once

#include "tensor/tensor.hpp"

namespace tapeflow {

// Which end of a run of equal entries a value equal to them goes to, as numpy.searchsorted's `side`:
//   left   the first i with sorted[i] ≥ v  (the count of entries < v)
//   right  the first i with sorted[i] > v  (the count of entries ≤ v)
enum class Side { left, right };

// For every value, the index in its sorted sequence where inserting it keeps the order (as doubles;
// exact below 2⁵³). `sorted` is 1-D [K], shared by every value, or [..., K] with one sequence per
// leading index and `values` [..., M] with the same leading sizes (as torch.searchsorted). Results lie
// in [0, K]; a NaN value goes past the end (K), as NumPy sorts NaN last. Throws unless every sequence
// is ascending and free of NaN.
Tensor searchsorted(const Tensor& sorted, const Tensor& values, Side side = Side::left);

}  // namespace tapeflow
