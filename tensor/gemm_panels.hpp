// gemm's direct path for skinny products, the part that keeps a panel of C in vector registers for the
// whole k loop. It is compiled once per kernel file (tensor/micro_kernel_*.cpp), so it gets that file's
// vector width (the panels below were sized for AVX-512's 32 registers, and run 1.5-2× slower built for
// AVX2). Included only by those files. Everything here is in an anonymous namespace and calls nothing
// from a header (no std::fill, no std::min): every definition must have internal linkage, or the
// linker could merge one file's AVX-512 copy into the others and run it on a CPU without AVX-512.
// Internal header: not installed.
#pragma once

#include <cstddef>

namespace tapeflow::kernels {
namespace {

// op(X)(row, col) = data[row · row_step + col · col_step]: either storage order of a matrix.
struct strided_operand {
    const double* data;
    std::size_t row_step;
    std::size_t col_step;
    double at(std::size_t row, std::size_t col) const { return data[row * row_step + col * col_step]; }
};

// op(X)(row, col) = data[row · ld + col]: a row-major matrix, its layout known at compile time.
struct row_major_operand {
    const double* data;
    std::size_t ld;
    double at(std::size_t row, std::size_t col) const { return data[row * ld + col]; }
};

inline void store(double* c, double value, bool accumulate) { *c = accumulate ? *c + value : value; }

// Row form, for contiguous rows of op(B) (b: K rows of N, leading dimension ldb) and N ≥ 8:
// c_i = Σ_k a_ik · b_k, vectorised over N, for Rows ≤ 3 rows. A panel of `Rows` rows × `panel` columns
// of C is small enough to live in vector registers for the whole k loop (3 × 32 doubles = 12 zmm), so
// each row of op(B) is loaded once and C is written once, instead of loading and storing the C rows at
// every k. Columns past the last whole panel take the plain loop.
template <std::size_t Rows>
void rows_panels(strided_operand a, const double* b, std::size_t ldb, std::size_t N, std::size_t K, double* C,
                 std::size_t ldc, bool accumulate) {
    constexpr std::size_t panel = 32;
    std::size_t j0 = 0;
    for (; j0 + panel <= N; j0 += panel) {
        double acc[Rows][panel] = {};
        for (std::size_t k = 0; k < K; ++k) {
            const double* b_row = b + k * ldb + j0;
            for (std::size_t i = 0; i < Rows; ++i) {
                const double a_ik = a.at(i, k);
                for (std::size_t j = 0; j < panel; ++j) acc[i][j] += a_ik * b_row[j];
            }
        }
        for (std::size_t i = 0; i < Rows; ++i)
            for (std::size_t j = 0; j < panel; ++j) store(C + i * ldc + j0 + j, acc[i][j], accumulate);
    }
    for (std::size_t i = 0; i < Rows; ++i) {
        double* c_row = C + i * ldc;
        if (!accumulate)
            for (std::size_t j = j0; j < N; ++j) c_row[j] = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
            const double a_ik = a.at(i, k);
            const double* b_row = b + k * ldb;
            for (std::size_t j = j0; j < N; ++j) c_row[j] += a_ik * b_row[j];
        }
    }
}

// MicroKernel::direct_rows.
inline void direct_rows(std::size_t rows, const double* a, std::size_t a_row_step, std::size_t a_col_step,
                        const double* b, std::size_t ldb, std::size_t N, std::size_t K, double* C, std::size_t ldc,
                        bool accumulate) {
    const strided_operand op_a{a, a_row_step, a_col_step};
    switch (rows) {
        case 1: rows_panels<1>(op_a, b, ldb, N, K, C, ldc, accumulate); break;
        case 2: rows_panels<2>(op_a, b, ldb, N, K, C, ldc, accumulate); break;
        default: rows_panels<3>(op_a, b, ldb, N, K, C, ldc, accumulate); break;
    }
}

// Column form, for contiguous columns of op(A) (a: op(A) stored transposed, a[k · lda + i]) and M ≥ 8:
// the row form applied to Cᵀ = op(B)ᵀ·op(A)ᵀ, vectorised over M, for Cols ≤ 4 columns. A panel of
// `panel` rows × `Cols` columns of C fits in vector registers for the whole k loop: each column of op(A)
// is loaded once for all columns of C, and C is written once. Rows past the last whole panel take a
// plain loop.
template <std::size_t Cols, class Operand>
void columns_panels(const double* a, std::size_t lda, Operand b, std::size_t M, std::size_t K, double* C,
                    std::size_t ldc, bool accumulate) {
    // ≤ 128 accumulators: 16 of AVX-512's 32 registers. A 16-row panel for Cols = 4 ran 10× slower
    // (GCC 12 vectorised it along the columns).
    constexpr std::size_t panel = 32;
    std::size_t i0 = 0;
    for (; i0 + panel <= M; i0 += panel) {
        double acc[Cols][panel] = {};
        for (std::size_t k = 0; k < K; ++k) {
            const double* a_column = a + k * lda + i0;
            for (std::size_t j = 0; j < Cols; ++j) {
                const double b_kj = b.at(k, j);
                for (std::size_t i = 0; i < panel; ++i) acc[j][i] += b_kj * a_column[i];
            }
        }
        for (std::size_t i = 0; i < panel; ++i)
            for (std::size_t j = 0; j < Cols; ++j) store(C + (i0 + i) * ldc + j, acc[j][i], accumulate);
    }
    for (std::size_t i = i0; i < M; ++i)
        for (std::size_t j = 0; j < Cols; ++j) {
            double sum = 0.0;
            for (std::size_t k = 0; k < K; ++k) sum += a[k * lda + i] * b.at(k, j);
            store(C + i * ldc + j, sum, accumulate);
        }
}

// MicroKernel::direct_columns.
inline void direct_columns(std::size_t cols, const double* a, std::size_t lda, const double* b,
                           std::size_t b_row_step, std::size_t b_col_step, std::size_t M, std::size_t K, double* C,
                           std::size_t ldc, bool accumulate) {
    // With the layout of op(B) fixed at compile time the compiler keeps the panel in registers; with
    // both strides at run time it did not (cols = 4 ran 10× slower).
    auto run = [&](auto op_b) {
        switch (cols) {
            case 1: columns_panels<1>(a, lda, op_b, M, K, C, ldc, accumulate); break;
            case 2: columns_panels<2>(a, lda, op_b, M, K, C, ldc, accumulate); break;
            case 3: columns_panels<3>(a, lda, op_b, M, K, C, ldc, accumulate); break;
            default: columns_panels<4>(a, lda, op_b, M, K, C, ldc, accumulate); break;
        }
    };
    if (b_col_step == 1)
        run(row_major_operand{b, b_row_step});
    else
        run(strided_operand{b, b_row_step, b_col_step});
}

}  // namespace
}  // namespace tapeflow::kernels
