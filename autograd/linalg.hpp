// Differentiable matrix products (2-D, or batched over a leading axis).
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

Var matmul(const Var& a, const Var& b);     // a · b
Var matmul_tn(const Var& a, const Var& b);  // aᵀ · b
Var matmul_nt(const Var& a, const Var& b);  // a · bᵀ

}  // namespace tapeflow
