#include "tensor/linalg.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"

using tapeflow::Shape;
using tapeflow::Tensor;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
const double ln10 = std::numbers::ln10;

// The textbook triple loop on one [M, K] · [K, N] pair, in k order.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
    const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
    Tensor c = Tensor::zeros(Shape{m, n});
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j)
            for (std::size_t p = 0; p < k; ++p) c[i * n + j] += a[i * k + p] * b[p * n + j];
    return c;
}

// Matrix `i` of a batch [B, M, N] (or the matrix itself when 2-D).
Tensor matrix(const Tensor& t, std::size_t i) {
    if (t.rank() == 2) return t;
    return tapeflow::squeeze(tapeflow::narrow(t, 0, i, 1), 0);
}

// Products of values in [−1, 1] summed over K terms: the two orders differ by at most ~K·ε.
constexpr double product_tol = 1e-13;

Tensor identity(std::size_t n) {
    Tensor t = Tensor::zeros(Shape{n, n});
    for (std::size_t i = 0; i < n; ++i) t[i * n + i] = 1;
    return t;
}

Tensor diagonal(std::size_t n, double value) { return identity(n) * value; }

}  // namespace

TEST_CASE("matmul of small integer matrices is exact") {
    const Tensor a{{1, 2, 3}, {4, 5, 6}};
    const Tensor b{{7, 8}, {9, 10}, {11, 12}};
    CHECK(tapeflow::equal(tapeflow::matmul(a, b), Tensor{{58, 64}, {139, 154}}));
    CHECK(tapeflow::equal(tapeflow::matmul(b, a), Tensor{{39, 54, 69}, {49, 68, 87}, {59, 82, 105}}));
    CHECK(tapeflow::equal(tapeflow::matmul_tn(tapeflow::transpose(a), b), Tensor{{58, 64}, {139, 154}}));
    CHECK(tapeflow::equal(tapeflow::matmul_nt(a, tapeflow::transpose(b)), Tensor{{58, 64}, {139, 154}}));
    CHECK(tapeflow::equal(tapeflow::matmul(identity(2), a), a));
}

TEST_CASE("matmul, matmul_tn and matmul_nt agree with the naive loop on odd sizes") {
    tapeflow::Rng rng(11);
    for (const auto& [m, k, n] : std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {5, 7, 3}, {13, 17, 19}, {1, 33, 2}}) {
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(n);
        const Tensor a = tapeflow::rand(Shape{m, k}, rng, -1, 1);
        const Tensor b = tapeflow::rand(Shape{k, n}, rng, -1, 1);
        const Tensor want = naive_matmul(a, b);
        CHECK(tapeflow::max_abs_diff(tapeflow::matmul(a, b), want) <= product_tol);
        CHECK(tapeflow::max_abs_diff(tapeflow::matmul_tn(tapeflow::transpose(a), b), want) <= product_tol);
        CHECK(tapeflow::max_abs_diff(tapeflow::matmul_nt(a, tapeflow::transpose(b)), want) <= product_tol);
    }
}

TEST_CASE("batched products: 3-D × 3-D, 2-D × 3-D and 3-D × 2-D") {
    tapeflow::Rng rng(12);
    const std::size_t B = 3, M = 4, K = 5, N = 2;
    const Tensor a3 = tapeflow::rand(Shape{B, M, K}, rng, -1, 1);
    const Tensor b3 = tapeflow::rand(Shape{B, K, N}, rng, -1, 1);
    const Tensor a2 = tapeflow::rand(Shape{M, K}, rng, -1, 1);
    const Tensor b2 = tapeflow::rand(Shape{K, N}, rng, -1, 1);
    struct Case {
        const char* name;
        Tensor a, b;
    };
    for (const Case& c : {Case{"3x3", a3, b3}, Case{"2x3", a2, b3}, Case{"3x2", a3, b2}}) {
        CAPTURE(c.name);
        const Tensor ab = tapeflow::matmul(c.a, c.b);
        const Tensor tn = tapeflow::matmul_tn(tapeflow::transpose(c.a), c.b);
        const Tensor nt = tapeflow::matmul_nt(c.a, tapeflow::transpose(c.b));
        REQUIRE(ab.shape() == Shape{B, M, N});
        REQUIRE(tn.shape() == Shape{B, M, N});
        REQUIRE(nt.shape() == Shape{B, M, N});
        for (std::size_t i = 0; i < B; ++i) {
            const Tensor want = naive_matmul(matrix(c.a, i), matrix(c.b, i));
            CHECK(tapeflow::max_abs_diff(matrix(ab, i), want) <= product_tol);
            CHECK(tapeflow::max_abs_diff(matrix(tn, i), want) <= product_tol);
            CHECK(tapeflow::max_abs_diff(matrix(nt, i), want) <= product_tol);
        }
    }
}

TEST_CASE("matmul with an empty dimension") {
    // K = 0 is the empty sum: zeros, not uninitialized memory.
    const Tensor z = tapeflow::matmul(Tensor::zeros(Shape{2, 0}), Tensor::zeros(Shape{0, 3}));
    CHECK(tapeflow::equal(z, Tensor::zeros(Shape{2, 3})));
    CHECK(tapeflow::matmul(Tensor::zeros(Shape{0, 4}), Tensor::zeros(Shape{4, 3})).shape() == Shape{0, 3});
    CHECK(tapeflow::matmul(Tensor::zeros(Shape{0, 2, 4}), Tensor::zeros(Shape{4, 3})).shape() == Shape{0, 2, 3});
}

TEST_CASE("matrix products name the op and both shapes on bad input") {
    const Tensor a = Tensor::zeros(Shape{2, 3});
    const Tensor b = Tensor::zeros(Shape{4, 2});
    CHECK_THROWS_WITH_AS(tapeflow::matmul(a, b), "matmul: inner dimensions differ: 3 · 4 (shapes [2, 3] and [4, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul_tn(a, b), "matmul_tn: inner dimensions differ: 2 · 4 (shapes [2, 3] and [4, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul_nt(a, b), "matmul_nt: inner dimensions differ: 3 · 2 (shapes [2, 3] and [4, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul(Tensor::zeros(Shape{2, 2, 3}), Tensor::zeros(Shape{3, 3, 2})),
                         "matmul: batch sizes differ: shapes [2, 2, 3] and [3, 3, 2]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul(Tensor{1, 2, 3}, a),
                         "matmul: the left operand must be a matrix [rows, cols] or a batch [B, rows, cols], got shape [3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul(a, Tensor::zeros(Shape{1, 1, 3, 2})),
                         doctest::Contains("matmul: the right operand must be a matrix [rows, cols] or a batch "
                                           "[B, rows, cols], got shape [1, 1, 3, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::matmul(Tensor{}, a), "matmul: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("lu_factor reconstructs P·A = L·U") {
    tapeflow::Rng rng(3);
    const Tensor swap_needed{{0, 2, 1}, {1, 1, 1}, {3, 0, 2}};
    for (const Tensor& a : {tapeflow::randn(Shape{6, 6}, rng), swap_needed, Tensor{{0, 1}, {1, 0}}}) {
        const std::size_t n = a.shape()[0];
        const tapeflow::LUFactorization f = tapeflow::lu_factor(a);
        REQUIRE(f.lu.shape() == a.shape());
        REQUIRE(f.pivots.size() == n);
        CHECK_FALSE(f.singular);
        Tensor lower = identity(n), upper = Tensor::zeros(Shape{n, n});
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) (j < i ? lower : upper)[i * n + j] = f.lu[i * n + j];
        // Applying the recorded swaps in order turns A into P·A; their count gives det(P).
        Tensor pa = a.clone();
        double sign = 1;
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(f.pivots[i] >= i);
            CHECK(f.pivots[i] < n);
            if (f.pivots[i] == i) continue;
            pa = tapeflow::index_select(pa, 0, [&] {
                std::vector<std::size_t> rows(n);
                for (std::size_t r = 0; r < n; ++r) rows[r] = r;
                std::swap(rows[i], rows[f.pivots[i]]);
                return rows;
            }());
            sign = -sign;
        }
        CHECK(f.permutation_sign == sign);
        CHECK(tapeflow::max_abs_diff(naive_matmul(lower, upper), pa) <= 1e-14);
        // Partial pivoting bounds every multiplier by 1.
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < i; ++j) CHECK(std::abs(lower[i * n + j]) <= 1);
    }
    CHECK(tapeflow::lu_factor(Tensor{{0, 1}, {1, 0}}).pivots == std::vector<std::size_t>{1, 1});
    CHECK(tapeflow::lu_factor(Tensor{{1, 2}, {2, 4}}).singular);
    const Tensor a{{2, 1}, {1, 3}};
    const Tensor before = a.clone();
    tapeflow::lu_factor(a);
    CHECK(tapeflow::equal(a, before));  // factors a copy
}

TEST_CASE("det of known matrices, including ones that need pivoting") {
    CHECK(std::abs(tapeflow::det(Tensor{{1, 2}, {3, 4}}) - (-2)) <= 1e-15);
    CHECK(tapeflow::det(Tensor{{0, 1}, {1, 0}}) == -1);
    CHECK(tapeflow::det(Tensor{{0, 1, 0}, {0, 0, 1}, {1, 0, 0}}) == 1);  // a 3-cycle is an even permutation
    CHECK(tapeflow::det(Tensor{{0, 0, 2}, {0, 3, 0}, {4, 0, 0}}) == -24);
    CHECK(tapeflow::det(Tensor{{2, 0, 0}, {0, -3, 0}, {0, 0, 0.5}}) == -3);
    CHECK(tapeflow::det(Tensor{{1, 5, 7}, {0, 2, 9}, {0, 0, 3}}) == 6);
    CHECK(std::abs(tapeflow::det(Tensor{{0, 2, 1}, {1, 1, 1}, {3, 0, 2}}) - (-1)) <= 1e-15);
    CHECK(tapeflow::det(Tensor(Shape{1, 1}, {-7})) == -7);
    CHECK(tapeflow::det(Tensor::zeros(Shape{0, 0})) == 1);  // the empty product
    // Singular: exactly zero, however the zero pivot shows up.
    CHECK(tapeflow::det(Tensor{{1, 2}, {2, 4}}) == 0);
    CHECK(tapeflow::det(Tensor::zeros(Shape{3, 3})) == 0);
    // Singular in exact arithmetic; rounding may leave a pivot of order ε instead of 0.
    CHECK(std::abs(tapeflow::det(Tensor{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}})) <= 1e-12);
    CHECK(tapeflow::det(Tensor{{0, 1, 2}, {0, 3, 4}, {0, 5, 6}}) == 0);
}

TEST_CASE("slogdet gives the sign and log|det| even where det overflows or underflows") {
    const tapeflow::SignLogDet s = tapeflow::slogdet(Tensor{{1, 2}, {3, 4}});
    CHECK(s.sign == -1);
    CHECK(std::abs(s.log_abs_det - std::numbers::ln2) <= 1e-15);
    CHECK(tapeflow::slogdet(Tensor{{0, 1}, {1, 0}}).sign == -1);
    CHECK(tapeflow::slogdet(Tensor{{0, 1}, {1, 0}}).log_abs_det == 0);
    CHECK(tapeflow::slogdet(Tensor{{-2, 0}, {0, -3}}).sign == 1);

    // det(diag(10) of size 200) = 1e200 still fits in a double; det(diag(100)) = 1e400 does not.
    // A sum of 200 rounded logarithms of size ~2.3 is good to about 200·ε·|sum|.
    const tapeflow::SignLogDet big = tapeflow::slogdet(diagonal(200, 10));
    CHECK(big.sign == 1);
    CHECK(std::abs(big.log_abs_det - 200 * ln10) <= 1e-11);
    CHECK(std::isinf(tapeflow::det(diagonal(200, 100))));
    const tapeflow::SignLogDet huge = tapeflow::slogdet(diagonal(200, 100));
    CHECK(huge.sign == 1);
    CHECK(std::abs(huge.log_abs_det - 400 * ln10) <= 2e-11);
    Tensor flipped = diagonal(200, 100);
    flipped[0] = -100;
    CHECK(tapeflow::slogdet(flipped).sign == -1);
    CHECK(std::abs(tapeflow::slogdet(flipped).log_abs_det - 400 * ln10) <= 2e-11);
    CHECK(tapeflow::det(diagonal(200, 0.01)) == 0);  // underflow
    const tapeflow::SignLogDet tiny = tapeflow::slogdet(diagonal(200, 0.01));
    CHECK(tiny.sign == 1);
    CHECK(std::abs(tiny.log_abs_det + 400 * ln10) <= 2e-11);

    const tapeflow::SignLogDet singular = tapeflow::slogdet(Tensor{{1, 2}, {2, 4}});
    CHECK(singular.sign == 0);
    CHECK(singular.log_abs_det == -inf);
}

TEST_CASE("slogdet agrees with det on a random matrix") {
    tapeflow::Rng rng(5);
    const Tensor a = tapeflow::randn(Shape{8, 8}, rng);
    const double d = tapeflow::det(a);
    const tapeflow::SignLogDet s = tapeflow::slogdet(a);
    CHECK(s.sign == (d > 0 ? 1 : -1));
    CHECK(std::abs(s.log_abs_det - std::log(std::abs(d))) <= 1e-13);
}

TEST_CASE("solve recovers a known solution, for one and several right-hand sides") {
    const Tensor a{{0, 2, 1}, {1, 1, 1}, {3, 0, 2}};  // a zero leading entry forces a pivot
    const Tensor x{1, -2, 3};
    const Tensor b = tapeflow::reshape(naive_matmul(a, tapeflow::reshape(x, Shape{3, 1})), Shape{3});
    CHECK(tapeflow::equal(b, Tensor{-1, 2, 9}));
    const Tensor solved = tapeflow::solve(a, b);
    CHECK(solved.shape() == Shape{3});
    CHECK(tapeflow::max_abs_diff(solved, x) <= 1e-14);
    CHECK(tapeflow::equal(b, Tensor{-1, 2, 9}));  // b is not overwritten

    tapeflow::Rng rng(9);
    const Tensor m = tapeflow::randn(Shape{7, 7}, rng);
    const Tensor xs = tapeflow::randn(Shape{7, 3}, rng);
    const Tensor many = tapeflow::solve(m, naive_matmul(m, xs));
    CHECK(many.shape() == Shape{7, 3});
    CHECK(tapeflow::max_abs_diff(many, xs) <= 1e-12);
    CHECK(tapeflow::max_abs_diff(tapeflow::solve(identity(3), x), x) == 0);
    CHECK(tapeflow::solve(Tensor(Shape{1, 1}, {4}), Tensor{2}).item() == 0.5);
}

TEST_CASE("solve and the determinants reject singular and non-square input by name") {
    CHECK_THROWS_WITH_AS(tapeflow::solve(Tensor{{1, 2}, {2, 4}}, Tensor{1, 1}), "solve: the 2×2 matrix is singular",
                         std::invalid_argument);
    const Tensor wide = Tensor::zeros(Shape{2, 3});
    CHECK_THROWS_WITH_AS(tapeflow::solve(wide, Tensor{1, 1}), "solve: needs a square matrix, got shape [2, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::solve(identity(2), Tensor{1, 2, 3}),
                         "solve: right-hand side must be [2] or [2, k], got shape [3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::solve(identity(2), Tensor::zeros(Shape{2, 1, 1})),
                         "solve: right-hand side must be [2] or [2, k], got shape [2, 1, 1]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::solve(identity(2), Tensor{}), "solve: the tensor is undefined (empty handle)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::det(wide), "det: needs a square matrix, got shape [2, 3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::slogdet(wide), "slogdet: needs a square matrix, got shape [2, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::lu_factor(Tensor{1, 2}), "lu_factor: needs a square matrix, got shape [2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::det(Tensor::zeros(Shape{2, 2, 2})), "det: needs a square matrix, got shape [2, 2, 2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::det(Tensor{}), "det: the tensor is undefined (empty handle)", std::invalid_argument);
}
