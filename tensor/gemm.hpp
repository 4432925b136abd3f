// Dense double-precision matrix multiply: C = op(A) · op(B) (+ C).
//
// Everything in tapeflow that multiplies matrices (linear layers, their backward passes, the coupling
// networks inside the flows) funnels through `gemm`, so it is the one kernel worth making fast.
// `gemm_reference` is the textbook triple loop; the tests hold `gemm` to it. Which micro-kernel (AVX-512,
// AVX2 or portable) does the work is chosen at run time: see tensor/micro_kernel.hpp.
//
// Layout: row-major with leading dimensions, as in CBLAS with CblasRowMajor. Element (i, j) of a stored
// matrix X with leading dimension ldx lives at X[i * ldx + j]; ldx ≥ the stored width lets a call work on
// a sub-block of a bigger matrix.
#pragma once

#include <cstddef>

namespace tapeflow::kernels {

// Whether an operand is used as stored (`no`) or transposed (`yes`). Transposes are never materialised:
// the fast path reads the stored matrix in whichever order the transpose implies while packing it.
enum class Transpose { no, yes };

// C (M×N) = op(A) · op(B)          if accumulate == false (C is only written, never read)
// C (M×N) = op(A) · op(B) + C      if accumulate == true
//
// op(A) is M×K: A is stored M×K (lda ≥ K), or for ta == yes stored K×M (lda ≥ M).
// op(B) is K×N: B is stored K×N (ldb ≥ N), or for tb == yes stored N×K (ldb ≥ K).
// C is stored M×N with ldc ≥ N and must not overlap A or B.
// M, N or K may be 0; with K == 0 and accumulate == false, C is set to zero (the empty sum).
//
// `threads` is an upper bound: the call uses at most min(threads, hardware_concurrency) threads, and only
// one when the product is too small for a second thread to pay for its wake-up.
// Throws std::invalid_argument if a leading dimension is smaller than the stored width.
void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, const double* A,
          std::size_t lda, const double* B, std::size_t ldb, double* C, std::size_t ldc, bool accumulate,
          int threads = 1);

// Same contract as `gemm`, computed by the plain triple loop: c_ij = Σ_k op(A)_ik · op(B)_kj, summed in
// order k = 0, 1, …, K−1. Slow on purpose; it is the ground truth for tests and benchmarks.
void gemm_reference(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, const double* A,
                    std::size_t lda, const double* B, std::size_t ldb, double* C, std::size_t ldc,
                    bool accumulate);

}  // namespace tapeflow::kernels
