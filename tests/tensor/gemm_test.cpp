// gemm against gemm_reference: every transpose combination, overwrite and accumulate, sizes that are not
// multiples of any micro-tile or cache block, padded leading dimensions, empty shapes, and 1 vs 2 threads
// — each with every micro-kernel this CPU can run (AVX-512, AVX2, portable: tensor/micro_kernel.hpp).
//
// Tolerance. Both kernels compute each c_ij as a sum of K products, in different orders. The standard
// bound for a sum of K terms in floating point is |error| ≤ K·u·Σ_k |a_ik·b_kj| (u = unit roundoff), so
// the two may differ by up to twice that; with accumulate the old |c_ij| joins the sum. We allow
//     |gemm − reference| ≤ 2·(K + 2)·ε·( (|A|·|B|)_ij + |c_ij before| ),   ε = DBL_EPSILON = 2u,
// which is about 1e-13 relative for K = 500 — tight enough that one dropped or doubled product fails.
// Two kernel paths, each within that bound of the reference, agree with each other to twice the bound.
//
// Traps. Padding between the stored width and the leading dimension of A and B holds NaN, so reading it
// poisons the result; the padding of C holds a sentinel that must survive; and without accumulate C starts
// as NaN, so a kernel that reads C when it should only write it fails.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tensor/gemm.hpp"
#include "tensor/micro_kernel.hpp"

namespace {

using tapeflow::kernels::gemm;
using tapeflow::kernels::gemm_reference;
using tapeflow::kernels::Transpose;

constexpr double quiet_nan = std::numeric_limits<double>::quiet_NaN();
constexpr double c_padding_sentinel = -12345.5;

// A stored row-major matrix with `rows` × `cols` live entries and leading dimension cols + pad.
struct stored_matrix {
    std::size_t rows, cols, ld;
    std::vector<double> values;

    stored_matrix(std::size_t rows_, std::size_t cols_, std::size_t pad, double padding_value)
        : rows(rows_), cols(cols_), ld(cols_ + pad), values(rows_ * (cols_ + pad), padding_value) {}

    double& at(std::size_t i, std::size_t j) { return values[i * ld + j]; }
    double at(std::size_t i, std::size_t j) const { return values[i * ld + j]; }

    void fill_random(std::mt19937_64& rng) {
        std::uniform_real_distribution<double> uniform(-1.0, 1.0);
        for (std::size_t i = 0; i < rows; ++i)
            for (std::size_t j = 0; j < cols; ++j) at(i, j) = uniform(rng);
    }
    stored_matrix absolute() const {
        stored_matrix result = *this;
        for (double& v : result.values) v = std::fabs(v);
        return result;
    }
    // gemm accepts a null pointer when there is nothing to read; exercise that for empty matrices.
    const double* data() const { return values.empty() ? nullptr : values.data(); }
    double* data() { return values.empty() ? nullptr : values.data(); }
};

struct gemm_case {
    Transpose ta = Transpose::no;
    Transpose tb = Transpose::no;
    std::size_t M = 0, N = 0, K = 0;
    bool accumulate = false;
    std::size_t pad = 0;  // extra columns in every leading dimension
    int threads = 1;
};

std::string describe(const gemm_case& c) {
    return std::string("ta=") + (c.ta == Transpose::yes ? "yes" : "no") +
           " tb=" + (c.tb == Transpose::yes ? "yes" : "no") + " M=" + std::to_string(c.M) +
           " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
           " accumulate=" + (c.accumulate ? "true" : "false") + " pad=" + std::to_string(c.pad) +
           " threads=" + std::to_string(c.threads) + " kernel=" + tapeflow::kernels::active_kernel().name;
}

// Runs `body` once with each micro-kernel this CPU supports forced, then returns to the automatic choice.
template <class Body>
void for_each_kernel(Body body) {
    struct restore_automatic_choice {
        ~restore_automatic_choice() { tapeflow::kernels::set_kernel("auto"); }
    } restore;
    for (std::string_view name : tapeflow::kernels::supported_kernels()) {
        tapeflow::kernels::set_kernel(name);
        body();
    }
}

struct gemm_operands {
    stored_matrix A, B, C;
};

gemm_operands make_operands(const gemm_case& c, std::mt19937_64& rng) {
    const bool ta = c.ta == Transpose::yes;
    const bool tb = c.tb == Transpose::yes;
    gemm_operands ops{stored_matrix(ta ? c.K : c.M, ta ? c.M : c.K, c.pad, quiet_nan),
                      stored_matrix(tb ? c.N : c.K, tb ? c.K : c.N, c.pad, quiet_nan),
                      stored_matrix(c.M, c.N, c.pad, c_padding_sentinel)};
    ops.A.fill_random(rng);
    ops.B.fill_random(rng);
    if (c.accumulate) {
        ops.C.fill_random(rng);
    } else {
        for (std::size_t i = 0; i < c.M; ++i)
            for (std::size_t j = 0; j < c.N; ++j) ops.C.at(i, j) = quiet_nan;
    }
    return ops;
}

stored_matrix run_gemm(const gemm_case& c, const gemm_operands& ops) {
    stored_matrix C = ops.C;
    gemm(c.ta, c.tb, c.M, c.N, c.K, ops.A.data(), ops.A.ld, ops.B.data(), ops.B.ld, C.data(), C.ld,
         c.accumulate, c.threads);
    return C;
}

// The bound of the header comment for one entry: K products of total magnitude (|A|·|B|)_ij, plus old_c.
double error_bound(std::size_t K, double magnitude, double old_c) {
    return 2.0 * static_cast<double>(K + 2) * DBL_EPSILON * (magnitude + old_c);
}

// (|A|·|B|)_ij, which scales the tolerance; NaN padding stays NaN under fabs but is never read.
stored_matrix magnitude_of(const gemm_case& c, const gemm_operands& ops) {
    stored_matrix magnitude(c.M, c.N, c.pad, 0.0);
    const stored_matrix abs_A = ops.A.absolute();
    const stored_matrix abs_B = ops.B.absolute();
    gemm_reference(c.ta, c.tb, c.M, c.N, c.K, abs_A.data(), abs_A.ld, abs_B.data(), abs_B.ld, magnitude.data(),
                   magnitude.ld, false);
    return magnitude;
}

// Runs gemm and gemm_reference on the same operands and checks every entry against the error bound and
// every padding entry of C against the sentinel. Reports the first offending entry.
void check_against_reference(const gemm_case& c, std::mt19937_64& rng) {
    INFO(describe(c));
    const gemm_operands ops = make_operands(c, rng);
    const stored_matrix C = run_gemm(c, ops);

    stored_matrix expected = ops.C;
    gemm_reference(c.ta, c.tb, c.M, c.N, c.K, ops.A.data(), ops.A.ld, ops.B.data(), ops.B.ld,
                   expected.data(), expected.ld, c.accumulate);
    const stored_matrix magnitude = magnitude_of(c, ops);

    for (std::size_t i = 0; i < c.M; ++i) {
        for (std::size_t j = 0; j < C.ld; ++j) {
            if (j >= c.N) {
                if (C.at(i, j) != c_padding_sentinel) {
                    FAIL("padding of C was written at (" << i << ", " << j << "): " << C.at(i, j));
                    return;
                }
                continue;
            }
            const double old_c = c.accumulate ? std::fabs(ops.C.at(i, j)) : 0.0;
            const double tolerance = error_bound(c.K, magnitude.at(i, j), old_c);
            const double error = std::fabs(C.at(i, j) - expected.at(i, j));
            if (!(error <= tolerance)) {  // also catches NaN
                FAIL("C(" << i << ", " << j << ") = " << C.at(i, j) << ", reference " << expected.at(i, j)
                          << ", |difference| " << error << " > tolerance " << tolerance);
                return;
            }
        }
    }
    CHECK(true);  // count the case as an assertion in doctest's summary
}

constexpr Transpose both[] = {Transpose::no, Transpose::yes};

}  // namespace

TEST_CASE("gemm: every transpose and accumulate combination matches the reference on odd sizes") {
    for_each_kernel([&] {
        // Covers both paths and all three direct forms: M < 4 or N < 8 take the direct path (row, column or
        // dot form depending on the transposes), the rest the blocked path with ragged micro-tiles on both
        // edges (none of these sizes is a multiple of 8, 24, 6 or 4 except 2).
        std::mt19937_64 rng(1);
        const std::size_t sizes[] = {1, 2, 3, 7, 13, 31, 61, 67};
        const std::size_t depths[] = {1, 2, 7, 31, 67};
        for (Transpose ta : both)
            for (Transpose tb : both)
                for (bool accumulate : {false, true})
                    for (std::size_t M : sizes)
                        for (std::size_t N : sizes)
                            for (std::size_t K : depths)
                                check_against_reference({ta, tb, M, N, K, accumulate, (M + N + K) % 3, 1}, rng);
    });
}

TEST_CASE("gemm: sizes that cross the cache blocks") {
    for_each_kernel([&] {
        // 129 / 257 / 515 straddle the micro-tiles; K = 515 needs two kc slices (the second one accumulates
        // onto the first); N = 515 needs two nc blocks; M = 1031 needs two mc blocks.
        std::mt19937_64 rng(2);
        const struct {
            std::size_t M, N, K;
        } shapes[] = {{129, 257, 67}, {257, 129, 515}, {61, 515, 257}, {1031, 29, 41}, {515, 515, 13}};
        for (const auto& s : shapes)
            for (Transpose ta : both)
                for (Transpose tb : both)
                    for (bool accumulate : {false, true})
                        check_against_reference({ta, tb, s.M, s.N, s.K, accumulate, 5, 1}, rng);
    });
}

TEST_CASE("gemm: tall, skinny and vector shapes") {
    for_each_kernel([&] {
        std::mt19937_64 rng(3);
        const struct {
            std::size_t M, N, K;
        } shapes[] = {
            {1, 1, 1},    {1, 1, 1000}, {1, 515, 257}, {257, 1, 515}, {1000, 3, 3}, {3, 1000, 3},
            {3, 3, 1000}, {700, 2, 90}, {2, 700, 90},  {512, 64, 64}, {64, 64, 512}, {96, 1, 1},
        };
        for (const auto& s : shapes)
            for (Transpose ta : both)
                for (Transpose tb : both)
                    for (bool accumulate : {false, true})
                        check_against_reference({ta, tb, s.M, s.N, s.K, accumulate, 2, 1}, rng);
    });
}

TEST_CASE("gemm: two threads match the reference and give bit-identical results to one thread") {
    // The split is over rows or columns of C, never over K, so every c_ij is summed in the same order
    // whatever the thread count: results are reproducible across thread counts. The slabs are cut in
    // whole micro-tiles, so the split differs per kernel: each one is compared with itself on 1 thread
    // (the reference check, the slow part, runs once with the automatic choice; on the 103-million
    // multiply-add shape only for the first transpose and accumulate case, which keeps the sanitized
    // suite fast: the other cases are held to the reference on the smaller shapes here and above).
    std::mt19937_64 rng(4);
    const struct {
        std::size_t M, N, K;
    } shapes[] = {{257, 515, 67}, {515, 257, 67}, {256, 512, 784}, {1031, 61, 131}, {61, 1031, 131}};
    for (const auto& s : shapes)
        for (Transpose ta : both)
            for (Transpose tb : both)
                for (bool accumulate : {false, true}) {
                    const gemm_case two{ta, tb, s.M, s.N, s.K, accumulate, 3, 2};
                    const bool first_case = ta == both[0] && tb == both[0] && !accumulate;
                    if (s.M * s.N * s.K < 20'000'000 || first_case) check_against_reference(two, rng);

                    const gemm_operands ops = make_operands(two, rng);
                    gemm_case one = two;
                    one.threads = 1;
                    for_each_kernel([&] {
                        INFO(describe(two));
                        // Compares the whole storage of C, padding included (it holds a finite sentinel).
                        CHECK(run_gemm(two, ops).values == run_gemm(one, ops).values);
                    });
                }
}

TEST_CASE("gemm: every kernel path gives the same products to within twice the error bound") {
    // Each path is held to the reference above; this compares the paths with each other directly, on
    // shapes that use the blocked path (ragged tiles of every kernel, several kc slices). The AVX-512 and
    // AVX2 kernels must even agree bit for bit: both sum each c_ij as one chain of fused multiply-adds
    // over the same kc slices, in the same order; only the tile shape differs.
    const std::vector<std::string_view> kernels = tapeflow::kernels::supported_kernels();
    std::mt19937_64 rng(7);
    const struct {
        std::size_t M, N, K;
    } shapes[] = {{67, 61, 131}, {257, 129, 515}, {8, 24, 256}, {515, 61, 13}};
    for (const auto& s : shapes)
        for (Transpose ta : both)
            for (Transpose tb : both) {
                const gemm_case c{ta, tb, s.M, s.N, s.K, true, 1, 1};
                const gemm_operands ops = make_operands(c, rng);
                const stored_matrix magnitude = magnitude_of(c, ops);
                std::vector<stored_matrix> results;
                for_each_kernel([&] { results.push_back(run_gemm(c, ops)); });
                REQUIRE(results.size() == kernels.size());
                for (std::size_t k = 1; k < results.size(); ++k) {
                    INFO(describe(c) << ": " << kernels[0] << " against " << kernels[k]);
                    double worst_excess = 0.0;  // largest |difference| / allowed; ≤ 1 passes
                    for (std::size_t i = 0; i < c.M; ++i)
                        for (std::size_t j = 0; j < c.N; ++j) {
                            const double allowed =
                                2.0 * error_bound(c.K, magnitude.at(i, j), std::fabs(ops.C.at(i, j)));
                            const double difference = std::fabs(results[0].at(i, j) - results[k].at(i, j));
                            worst_excess = std::fmax(worst_excess, difference / allowed);
                            if (std::isnan(difference)) worst_excess = quiet_nan;
                        }
                    CHECK(worst_excess <= 1.0);
                    if (kernels[0] == "avx512" && kernels[k] == "avx2") CHECK(results[0].values == results[k].values);
                }
            }
}

TEST_CASE("gemm: concurrent callers asking for two threads each get correct results") {
    for_each_kernel([&] {
        // Only one call can own the worker pool; the other must fall back to running serially.
        const gemm_case c{Transpose::no, Transpose::yes, 300, 300, 200, false, 1, 2};
        std::mt19937_64 rng(5);
        const gemm_operands ops = make_operands(c, rng);
        stored_matrix expected = ops.C;
        gemm_reference(c.ta, c.tb, c.M, c.N, c.K, ops.A.data(), ops.A.ld, ops.B.data(), ops.B.ld,
                       expected.data(), expected.ld, false);

        std::vector<stored_matrix> results(3, ops.C);
        std::vector<std::thread> callers;
        for (stored_matrix& result : results)
            callers.emplace_back([&] {
                for (int repeat = 0; repeat < 5; ++repeat)
                    gemm(c.ta, c.tb, c.M, c.N, c.K, ops.A.data(), ops.A.ld, ops.B.data(), ops.B.ld, result.data(),
                         result.ld, false, 2);
            });
        for (std::thread& caller : callers) caller.join();
        for (const stored_matrix& result : results) {
            double worst = 0.0;
            for (std::size_t i = 0; i < c.M; ++i)
                for (std::size_t j = 0; j < c.N; ++j)
                    worst = std::fmax(worst, std::fabs(result.at(i, j) - expected.at(i, j)));
            CHECK(worst <= 1e-12);
        }
    });
}

TEST_CASE("gemm: empty shapes") {
    std::mt19937_64 rng(6);
    SUBCASE("K = 0 without accumulate writes zeros (the empty sum), and only inside the M×N block") {
        for (Transpose ta : both)
            for (Transpose tb : both) check_against_reference({ta, tb, 5, 7, 0, false, 2, 1}, rng);
        stored_matrix C(4, 3, 2, c_padding_sentinel);
        for (std::size_t i = 0; i < 4; ++i)
            for (std::size_t j = 0; j < 3; ++j) C.at(i, j) = quiet_nan;
        gemm(Transpose::no, Transpose::no, 4, 3, 0, nullptr, 1, nullptr, 3, C.data(), C.ld, false);
        for (std::size_t i = 0; i < 4; ++i) {
            for (std::size_t j = 0; j < 3; ++j) CHECK(C.at(i, j) == 0.0);
            for (std::size_t j = 3; j < C.ld; ++j) CHECK(C.at(i, j) == c_padding_sentinel);
        }
    }
    SUBCASE("K = 0 with accumulate leaves C unchanged") {
        for (Transpose ta : both)
            for (Transpose tb : both) check_against_reference({ta, tb, 5, 7, 0, true, 2, 1}, rng);
    }
    SUBCASE("M = 0 or N = 0 touches nothing") {
        for (Transpose ta : both)
            for (Transpose tb : both)
                for (bool accumulate : {false, true}) {
                    check_against_reference({ta, tb, 0, 7, 5, accumulate, 1, 2}, rng);
                    check_against_reference({ta, tb, 7, 0, 5, accumulate, 1, 2}, rng);
                    check_against_reference({ta, tb, 0, 0, 0, accumulate, 1, 1}, rng);
                }
        double untouched = 42.0;
        gemm(Transpose::no, Transpose::no, 1, 0, 3, nullptr, 3, nullptr, 0, &untouched, 0, false);
        CHECK(untouched == 42.0);
    }
}

TEST_CASE("gemm: leading dimensions smaller than the stored width are rejected") {
    std::vector<double> A(64, 1.0), B(64, 1.0), C(64, 0.0);
    // op(A) is 4×3: stored 4×3 needs lda ≥ 3, stored transposed (3×4) needs lda ≥ 4.
    CHECK_THROWS_AS(gemm(Transpose::no, Transpose::no, 4, 2, 3, A.data(), 2, B.data(), 2, C.data(), 2, false),
                    std::invalid_argument);
    CHECK_THROWS_AS(gemm(Transpose::yes, Transpose::no, 4, 2, 3, A.data(), 3, B.data(), 2, C.data(), 2, false),
                    std::invalid_argument);
    // op(B) is 3×2: transposed storage is 2×3, so ldb ≥ 3.
    CHECK_THROWS_AS(gemm(Transpose::no, Transpose::yes, 4, 2, 3, A.data(), 3, B.data(), 2, C.data(), 2, false),
                    std::invalid_argument);
    CHECK_THROWS_AS(gemm(Transpose::no, Transpose::no, 4, 2, 3, A.data(), 3, B.data(), 2, C.data(), 1, false),
                    std::invalid_argument);
    CHECK_THROWS_AS(gemm_reference(Transpose::no, Transpose::no, 4, 2, 3, A.data(), 2, B.data(), 2, C.data(), 2,
                                   false),
                    std::invalid_argument);
    CHECK_NOTHROW(gemm(Transpose::yes, Transpose::yes, 4, 2, 3, A.data(), 4, B.data(), 3, C.data(), 2, false));
}
