// Elementwise operations with NumPy broadcasting. Binary ops accept any two broadcastable shapes
// and throw std::invalid_argument naming the op and both shapes otherwise.
#pragma once

#include "tensor/tensor.hpp"

namespace tapeflow {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// Elementwise min / max; a NaN in either operand gives NaN (as torch.minimum, not std::fmin).
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
// aᵇ elementwise (std::pow semantics).
Tensor pow(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);
Tensor operator-(const Tensor& a);

Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor log1p(const Tensor& a);
Tensor expm1(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor square(const Tensor& a);
Tensor pow(const Tensor& a, double p);
Tensor abs(const Tensor& a);
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);  // max(x, 0); NaN stays NaN
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
Tensor softplus(const Tensor& a);
Tensor log_sigmoid(const Tensor& a);
// min(max(a, lo), hi); throws if lo > hi.
Tensor clamp(const Tensor& a, double lo, double hi);

// Comparisons give 1.0 where the relation holds and 0.0 elsewhere.
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
// cond ≠ 0 ? a : b elementwise, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// dst += alpha · src in place, where src broadcasts to dst's shape (dst's shape must not grow).
void add_into(Tensor& dst, const Tensor& src, double alpha = 1.0);

// True when every element is finite (no NaN, no ±inf).
bool all_finite(const Tensor& a);

}  // namespace tapeflow
