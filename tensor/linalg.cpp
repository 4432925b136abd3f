#include "tensor/linalg.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"

namespace tapeflow {

namespace {

using kernels::Transpose;

// The matrix (last two axes) view of a rank-2 or rank-3 operand.
struct MatrixOperand {
    std::size_t batch, rows, cols;
};

MatrixOperand matrix_operand(const Tensor& t, std::string_view op, std::string_view which) {
    require_defined(t, op);
    if (t.rank() == 2) return {1, t.shape()[0], t.shape()[1]};
    if (t.rank() == 3) return {t.shape()[0], t.shape()[1], t.shape()[2]};
    throw std::invalid_argument(
        fmt::format("{}: {} must be a matrix [rows, cols] or a batch [B, rows, cols], got shape {}", op, which,
                    t.shape()));
}

// C = op(A)·op(B) for every matrix of a batch; the flags say which operand is stored transposed.
Tensor batched_product(const Tensor& a, const Tensor& b, Transpose ta, Transpose tb, std::string_view op) {
    const MatrixOperand A = matrix_operand(a, op, "the left operand");
    const MatrixOperand B = matrix_operand(b, op, "the right operand");
    const std::size_t m = ta == Transpose::yes ? A.cols : A.rows;
    const std::size_t k = ta == Transpose::yes ? A.rows : A.cols;
    const std::size_t kb = tb == Transpose::yes ? B.cols : B.rows;
    const std::size_t n = tb == Transpose::yes ? B.rows : B.cols;
    if (k != kb)
        throw std::invalid_argument(fmt::format("{}: inner dimensions differ: {} · {} (shapes {} and {})", op,
                                                k, kb, a.shape(), b.shape()));
    if (A.batch != B.batch && a.rank() == 3 && b.rank() == 3)
        throw std::invalid_argument(
            fmt::format("{}: batch sizes differ: shapes {} and {}", op, a.shape(), b.shape()));
    // A 2-D operand is shared across the other's batch, which may be empty.
    const std::size_t batch = a.rank() == 3 ? A.batch : B.batch;
    Tensor out(a.rank() == 3 || b.rank() == 3 ? Shape{batch, m, n} : Shape{m, n});
    const std::size_t a_step = a.rank() == 3 ? A.rows * A.cols : 0;
    const std::size_t b_step = b.rank() == 3 ? B.rows * B.cols : 0;
    for (std::size_t i = 0; i < batch; ++i)
        kernels::gemm(ta, tb, m, n, k, a.data() + i * a_step, A.cols, b.data() + i * b_step, B.cols,
                      out.data() + i * m * n, n, false, num_threads());
    return out;
}

void require_square(const Tensor& a, std::string_view op) {
    require_defined(a, op);
    if (a.rank() != 2 || a.shape()[0] != a.shape()[1])
        throw std::invalid_argument(fmt::format("{}: needs a square matrix, got shape {}", op, a.shape()));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return batched_product(a, b, Transpose::no, Transpose::no, "matmul"); }
Tensor matmul_tn(const Tensor& a, const Tensor& b) {
    return batched_product(a, b, Transpose::yes, Transpose::no, "matmul_tn");
}
Tensor matmul_nt(const Tensor& a, const Tensor& b) {
    return batched_product(a, b, Transpose::no, Transpose::yes, "matmul_nt");
}

LUFactorization lu_factor(const Tensor& a) {
    require_square(a, "lu_factor");
    const std::size_t n = a.shape()[0];
    LUFactorization f{a.clone(), std::vector<std::size_t>(n), 1.0, false};
    Tensor& lu = f.lu;
    for (std::size_t col = 0; col < n; ++col) {
        // Partial pivoting: the largest |entry| in the column bounds every multiplier by 1.
        std::size_t pivot = col;
        for (std::size_t r = col + 1; r < n; ++r)
            if (std::abs(lu[r * n + col]) > std::abs(lu[pivot * n + col])) pivot = r;
        f.pivots[col] = pivot;
        if (pivot != col) {
            for (std::size_t c = 0; c < n; ++c) std::swap(lu.data()[col * n + c], lu.data()[pivot * n + c]);
            f.permutation_sign = -f.permutation_sign;
        }
        const double diag = lu[col * n + col];
        if (diag == 0) {
            f.singular = true;
            continue;
        }
        for (std::size_t r = col + 1; r < n; ++r) {
            const double l = lu[r * n + col] / diag;
            lu[r * n + col] = l;
            for (std::size_t c = col + 1; c < n; ++c) lu[r * n + c] -= l * lu[col * n + c];
        }
    }
    return f;
}

double det(const Tensor& a) {
    require_square(a, "det");
    const LUFactorization f = lu_factor(a);
    const std::size_t n = a.shape()[0];
    double d = f.permutation_sign;
    for (std::size_t i = 0; i < n; ++i) d *= f.lu[i * n + i];
    return d;
}

SignLogDet slogdet(const Tensor& a) {
    require_square(a, "slogdet");
    const LUFactorization f = lu_factor(a);
    if (f.singular) return {0.0, -std::numeric_limits<double>::infinity()};
    const std::size_t n = a.shape()[0];
    SignLogDet r{f.permutation_sign, 0.0};
    for (std::size_t i = 0; i < n; ++i) {
        const double u = f.lu[i * n + i];
        r.log_abs_det += std::log(std::abs(u));
        if (u < 0) r.sign = -r.sign;
    }
    return r;
}

Tensor solve(const Tensor& a, const Tensor& b) {
    require_square(a, "solve");
    require_defined(b, "solve");
    const std::size_t n = a.shape()[0];
    if ((b.rank() != 1 && b.rank() != 2) || b.shape()[0] != n)
        throw std::invalid_argument(
            fmt::format("solve: right-hand side must be [{}] or [{}, k], got shape {}", n, n, b.shape()));
    const LUFactorization f = lu_factor(a);
    if (f.singular) throw std::invalid_argument(fmt::format("solve: the {}×{} matrix is singular", n, n));
    const std::size_t k = b.rank() == 2 ? b.shape()[1] : 1;
    Tensor x = b.clone();
    // Apply P, then forward substitution with unit L, then back substitution with U.
    for (std::size_t i = 0; i < n; ++i)
        if (f.pivots[i] != i)
            for (std::size_t c = 0; c < k; ++c) std::swap(x.data()[i * k + c], x.data()[f.pivots[i] * k + c]);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j)
            for (std::size_t c = 0; c < k; ++c) x[i * k + c] -= f.lu[i * n + j] * x[j * k + c];
    for (std::size_t i = n; i-- > 0;) {
        for (std::size_t j = i + 1; j < n; ++j)
            for (std::size_t c = 0; c < k; ++c) x[i * k + c] -= f.lu[i * n + j] * x[j * k + c];
        for (std::size_t c = 0; c < k; ++c) x[i * k + c] /= f.lu[i * n + i];
    }
    return x;
}

}  // namespace tapeflow
