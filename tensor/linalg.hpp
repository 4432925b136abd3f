// Matrix products and the small dense linear algebra that checks Jacobians.
#pragma once

#include <vector>

#include "tensor/tensor.hpp"

namespace tapeflow {

// a · b for a [M, K], b [K, N] → [M, N]; batched for a [B, M, K], b [B, K, N] → [B, M, N]
// (a 2-D operand is shared across the batch of the other).
Tensor matmul(const Tensor& a, const Tensor& b);
// aᵀ · b for a [K, M], b [K, N] → [M, N] (batched on a leading axis), without forming aᵀ.
Tensor matmul_tn(const Tensor& a, const Tensor& b);
// a · bᵀ for a [M, K], b [N, K] → [M, N] (batched on a leading axis), without forming bᵀ.
Tensor matmul_nt(const Tensor& a, const Tensor& b);

// LU factorization with partial pivoting, P·A = L·U, packed: U on and above the diagonal, the unit
// lower-triangular L below it. `pivots[i]` is the row swapped into row i at step i.
struct LUFactorization {
    Tensor lu;
    std::vector<std::size_t> pivots;
    double permutation_sign = 1.0;  // det(P) = ±1
    bool singular = false;          // an exactly zero pivot appeared
};
LUFactorization lu_factor(const Tensor& a);

// det(A) = det(P) · Π U_ii.
double det(const Tensor& a);
// sign and log|det A| (sign 0 and −inf for a singular matrix), without the overflow of det.
struct SignLogDet {
    double sign;
    double log_abs_det;
};
SignLogDet slogdet(const Tensor& a);
// Solves A·x = b for b of shape [n] or [n, k]; throws if A is singular.
Tensor solve(const Tensor& a, const Tensor& b);

}  // namespace tapeflow
