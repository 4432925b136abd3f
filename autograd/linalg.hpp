// Differentiable matrix products (2-D, or batched over a leading axis).
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var matmul(const Var& a, const Var& b, CallSite site = CallSite::current());     // a · b
Var matmul_tn(const Var& a, const Var& b, CallSite site = CallSite::current());  // aᵀ · b
Var matmul_nt(const Var& a, const Var& b, CallSite site = CallSite::current());  // a · bᵀ

}  // namespace tapeflow
