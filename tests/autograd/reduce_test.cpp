// Reductions: gradchecks over all elements and along every axis (negative axes too), with and without
// keepdim, for ranks 1-3; how max/min split the gradient between tied entries; and logsumexp's
// gradient with −inf entries.
#include "autograd/reduce.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/elementwise.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// Entries at least 0.25 apart (a shuffled grid): max and min have no ties, and no finite-difference
// step crosses one.
Tensor distinct(const Shape& shape, Rng& rng) {
    const std::size_t n = shape.numel();
    const std::vector<std::size_t> order = random_permutation(n, rng);
    Tensor t(shape);
    for (std::size_t i = 0; i < n; ++i) t[i] = (static_cast<double>(order[i]) - 0.5 * static_cast<double>(n)) * 0.25;
    return t;
}

const std::vector<Shape> shapes = {{5}, {3, 4}, {2, 3, 4}};

}  // namespace

TEST_CASE("full reductions: gradients and values") {
    Rng rng(21);
    for (const Shape& shape : shapes) {
        INFO(fmt::format("shape {}", shape));
        const Tensor x = distinct(shape, rng);
        CHECK_GRADCHECK([](const Vars& v) { return sum(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return mean(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return max(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return min(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return logsumexp(v[0]); }, {x});
        // Behind another op, so the upstream gradient is not 1.
        CHECK_GRADCHECK([](const Vars& v) { return square(logsumexp(v[0] * 2.0)); }, {x});

        Tape tape;
        TapeScope scope(tape);
        const Var xv = tape.variable(x);
        CHECK(equal(sum(xv).value(), tapeflow::sum(x)));
        CHECK(equal(mean(xv).value(), tapeflow::mean(x)));
        CHECK(equal(max(xv).value(), tapeflow::max(x)));
        CHECK(equal(min(xv).value(), tapeflow::min(x)));
        CHECK(equal(logsumexp(xv).value(), tapeflow::logsumexp(x)));
    }
}

TEST_CASE("reductions along each axis, with and without keepdim") {
    Rng rng(22);
    for (const Shape& shape : shapes) {
        const Tensor x = distinct(shape, rng);
        const int rank = static_cast<int>(shape.rank());
        for (int axis = -rank; axis < rank; ++axis)
            for (const bool keepdim : {false, true}) {
                INFO(fmt::format("shape {}, axis {}, keepdim {}", shape, axis, keepdim));
                CHECK_GRADCHECK([axis, keepdim](const Vars& v) { return sum(v[0], axis, keepdim); }, {x});
                CHECK_GRADCHECK([axis, keepdim](const Vars& v) { return mean(v[0], axis, keepdim); }, {x});
                CHECK_GRADCHECK([axis, keepdim](const Vars& v) { return max(v[0], axis, keepdim); }, {x});
                CHECK_GRADCHECK([axis, keepdim](const Vars& v) { return min(v[0], axis, keepdim); }, {x});
                CHECK_GRADCHECK([axis, keepdim](const Vars& v) { return logsumexp(v[0], axis, keepdim); }, {x});

                Tape tape;
                TapeScope scope(tape);
                const Var xv = tape.variable(x);
                CHECK(equal(sum(xv, axis, keepdim).value(), tapeflow::sum(x, axis, keepdim)));
                CHECK(equal(mean(xv, axis, keepdim).value(), tapeflow::mean(x, axis, keepdim)));
                CHECK(equal(max(xv, axis, keepdim).value(), tapeflow::max(x, axis, keepdim)));
                CHECK(equal(min(xv, axis, keepdim).value(), tapeflow::min(x, axis, keepdim)));
                CHECK(equal(logsumexp(xv, axis, keepdim).value(), tapeflow::logsumexp(x, axis, keepdim)));
            }
    }
}

TEST_CASE("a bad axis is rejected with the reduction's message") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{{1.0, 2.0}, {3.0, 4.0}});
    CHECK_THROWS_AS(sum(x, 2), std::invalid_argument);
    CHECK_THROWS_AS(max(x, -3, true), std::invalid_argument);
    CHECK(tape.size() == 1);
}

TEST_CASE("max and min split the gradient evenly among tied entries") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 3.0, 3.0, 2.0});
    tape.backward(max(x));
    CHECK(equal(x.grad(), Tensor{0.0, 0.5, 0.5, 0.0}));
    tape.backward(min(x) * 3.0);
    CHECK(equal(x.grad(), Tensor{3.0, 0.0, 0.0, 0.0}));

    const double third = 1.0 / 3.0;
    const Var m = tape.variable(Tensor{{3.0, 3.0, 1.0}, {2.0, 5.0, 5.0}, {4.0, 4.0, 4.0}});
    tape.backward(sum(max(m, 1)));
    CHECK(equal(m.grad(), Tensor{{0.5, 0.5, 0.0}, {0.0, 0.5, 0.5}, {third, third, third}}));
    // Upstream gradients differ per row; keepdim keeps the reduced axis.
    tape.backward(sum(max(m, -1, true) * Var(Tensor(Shape{3, 1}, {2.0, 6.0, -3.0}))));
    CHECK(equal(m.grad(), Tensor{{1.0, 1.0, 0.0}, {0.0, 3.0, 3.0}, {-1.0, -1.0, -1.0}}));
    tape.backward(sum(min(m, 0)));
    CHECK(equal(m.grad(), Tensor{{0.0, 1.0, 1.0}, {1.0, 0.0, 0.0}, {0.0, 0.0, 0.0}}));
    // Over all elements: the two 5s tie; lowered to 4, five entries tie.
    tape.backward(max(m));
    CHECK(equal(m.grad(), Tensor{{0.0, 0.0, 0.0}, {0.0, 0.5, 0.5}, {0.0, 0.0, 0.0}}));
    tape.backward(max(m - Var(Tensor{{0.0, 0.0, 0.0}, {0.0, 1.0, 1.0}, {0.0, 0.0, 0.0}})));
    CHECK(equal(m.grad(), Tensor{{0.0, 0.0, 0.0}, {0.0, 0.2, 0.2}, {0.2, 0.2, 0.2}}));
    tape.backward(min(m + Var(Tensor{{0.0, 0.0, 1.0}, {0.0, 0.0, 0.0}, {0.0, 0.0, 0.0}})));
    CHECK(equal(m.grad(), Tensor{{0.0, 0.0, 0.5}, {0.5, 0.0, 0.0}, {0.0, 0.0, 0.0}}));
}

TEST_CASE("logsumexp: a −inf entry gets exactly zero gradient, never NaN") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{-inf, 0.0, 1.0});
    const Var l = logsumexp(x);
    CHECK(std::abs(l.item() - std::log(1 + std::exp(1.0))) <= 1e-15);
    tape.backward(l);
    const Tensor g = x.grad();
    CHECK(g[0] == 0.0);
    CHECK(std::abs(g[1] - 1 / (1 + std::exp(1.0))) <= 1e-15);
    CHECK(std::abs(g[2] - std::exp(1.0) / (1 + std::exp(1.0))) <= 1e-15);

    // Along an axis, a row of only −inf has no mass to distribute: zero gradient, value −inf.
    for (const bool keepdim : {false, true}) {
        const Var m = tape.variable(Tensor{{-inf, -inf}, {0.0, std::log(3.0)}, {-inf, 2.0}});
        const Var row = logsumexp(m, 1, keepdim);
        CHECK(row.value()[0] == -inf);
        tape.backward(sum(row));
        const Tensor gm = m.grad();
        CHECK(all_finite(gm));
        CHECK(gm[0] == 0.0);
        CHECK(gm[1] == 0.0);
        CHECK(std::abs(gm[2] - 0.25) <= 1e-15);
        CHECK(std::abs(gm[3] - 0.75) <= 1e-15);
        CHECK(gm[4] == 0.0);
        CHECK(gm[5] == 1.0);
    }

    // Huge entries do not overflow.
    const Var big = tape.variable(Tensor{1000.0, 1000.0});
    const Var lb = logsumexp(big);
    CHECK(lb.item() == 1000.0 + std::log(2.0));
    tape.backward(lb);
    // e^{x − lse} with lse rounded at 1000's scale (ulp 1.1e-13): one half to about 1e-13.
    CHECK(max_abs_diff(big.grad(), Tensor{0.5, 0.5}) <= 2e-13);
}
