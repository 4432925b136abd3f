// Differentiable elementwise operations with broadcasting (the Var twins of tensor/elementwise.hpp).
// Each one's derivative is stated beside its backward rule in elementwise.cpp.
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var minimum(const Var& a, const Var& b);
Var maximum(const Var& a, const Var& b);

Var operator+(const Var& a, const Var& b);
Var operator-(const Var& a, const Var& b);
Var operator*(const Var& a, const Var& b);
Var operator/(const Var& a, const Var& b);
Var operator+(const Var& a, double s);
Var operator+(double s, const Var& a);
Var operator-(const Var& a, double s);
Var operator-(double s, const Var& a);
Var operator*(const Var& a, double s);
Var operator*(double s, const Var& a);
Var operator/(const Var& a, double s);
Var operator/(double s, const Var& a);
Var operator-(const Var& a);

Var neg(const Var& a);
Var exp(const Var& a);
Var log(const Var& a);
Var log1p(const Var& a);
Var expm1(const Var& a);
Var sqrt(const Var& a);
Var square(const Var& a);
Var pow(const Var& a, double p);
Var abs(const Var& a);
Var sin(const Var& a);
Var cos(const Var& a);
Var tanh(const Var& a);
Var sigmoid(const Var& a);
Var relu(const Var& a);
Var leaky_relu(const Var& a, double negative_slope = 0.01);
Var softplus(const Var& a);
Var log_sigmoid(const Var& a);
Var clamp(const Var& a, double lo, double hi);
// cond ≠ 0 ? a : b; cond is a constant mask (comparisons have no gradient).
Var where(const Tensor& cond, const Var& a, const Var& b);

}  // namespace tapeflow
