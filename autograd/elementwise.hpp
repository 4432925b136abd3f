// Differentiable elementwise operations with broadcasting (the Var twins of tensor/elementwise.hpp).
// Each one's derivative is stated beside its backward rule in elementwise.cpp.
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var add(const Var& a, const Var& b, CallSite site = CallSite::current());
Var sub(const Var& a, const Var& b, CallSite site = CallSite::current());
Var mul(const Var& a, const Var& b, CallSite site = CallSite::current());
Var div(const Var& a, const Var& b, CallSite site = CallSite::current());
Var minimum(const Var& a, const Var& b, CallSite site = CallSite::current());
Var maximum(const Var& a, const Var& b, CallSite site = CallSite::current());

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

Var neg(const Var& a, CallSite site = CallSite::current());
Var exp(const Var& a, CallSite site = CallSite::current());
Var log(const Var& a, CallSite site = CallSite::current());
Var log1p(const Var& a, CallSite site = CallSite::current());
Var expm1(const Var& a, CallSite site = CallSite::current());
Var sqrt(const Var& a, CallSite site = CallSite::current());
Var square(const Var& a, CallSite site = CallSite::current());
Var pow(const Var& a, double p, CallSite site = CallSite::current());
Var abs(const Var& a, CallSite site = CallSite::current());
Var sin(const Var& a, CallSite site = CallSite::current());
Var cos(const Var& a, CallSite site = CallSite::current());
Var tanh(const Var& a, CallSite site = CallSite::current());
Var sigmoid(const Var& a, CallSite site = CallSite::current());
Var relu(const Var& a, CallSite site = CallSite::current());
Var leaky_relu(const Var& a, double negative_slope = 0.01, CallSite site = CallSite::current());
Var softplus(const Var& a, CallSite site = CallSite::current());
Var log_sigmoid(const Var& a, CallSite site = CallSite::current());
Var clamp(const Var& a, double lo, double hi, CallSite site = CallSite::current());
// cond ≠ 0 ? a : b; cond is a constant mask (comparisons have no gradient).
//
// The gradient trap (as in every autodiff): where routes a zero gradient to the branch not taken, but
// that branch was still computed, and its own backward multiplies the zero by its local derivative.
// Where that is ∞ or NaN (√x at 0, log x at x < 0, x/y at y = 0) the product is NaN and poisons the
// input's gradient, although the value is fine. The safe pattern guards the *input* of the risky op,
// so that it never sees a value outside its domain:
//
//     const Var safe_x = where(ok, x, Var(Tensor::ones(x.shape())));  // 1 where the branch is not taken
//     const Var y = where(ok, sqrt(safe_x), Var(Tensor::zeros(x.shape())));
//
// (tests/autograd/elementwise_test.cpp shows both).
Var where(const Tensor& cond, const Var& a, const Var& b, CallSite site = CallSite::current());

}  // namespace tapeflow
