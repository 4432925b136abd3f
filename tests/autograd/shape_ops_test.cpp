// Shape ops: gradchecks of every op, plain and behind a weighted sum (whose gradient tells every
// element apart, so an element sent back to the wrong place shows up), repeated elements
// accumulating, and values identical to the tensor ops'.
#include "autograd/shape_ops.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "tensor/format.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

// Σ w ⊙ y with fixed weights that depend only on y's shape (gradcheck calls f many times).
Var weighted_sum(const Var& y) {
    Rng rng(1000 + y.numel());
    return sum(y * Var(randn(y.shape(), rng)));
}

// Checks f(x) itself (its full Jacobian) and Σ w ⊙ f(x).
template <class F>
void check_shape_op(F f, const Tensor& x) {
    CHECK_GRADCHECK([f](const Vars& v) { return f(v[0]); }, {x});
    CHECK_GRADCHECK([f](const Vars& v) { return weighted_sum(f(v[0])); }, {x});
}

}  // namespace

TEST_CASE("reshape, flatten, unsqueeze, squeeze") {
    Rng rng(41);
    const Tensor m = randn(Shape{2, 3}, rng);
    check_shape_op([](const Var& x) { return reshape(x, Shape{3, 2}); }, m);
    check_shape_op([](const Var& x) { return reshape(x, Shape{1, 6, 1}); }, m);
    check_shape_op([](const Var& x) { return reshape(x, Shape{1}); }, Tensor::scalar(0.3));
    check_shape_op([](const Var& x) { return flatten(x); }, randn(Shape{2, 3, 2}, rng));
    check_shape_op([](const Var& x) { return unsqueeze(x, 0); }, m);
    check_shape_op([](const Var& x) { return unsqueeze(x, 1); }, m);
    check_shape_op([](const Var& x) { return unsqueeze(x, -1); }, m);
    check_shape_op([](const Var& x) { return squeeze(x, 1); }, randn(Shape{2, 1, 3}, rng));
    check_shape_op([](const Var& x) { return squeeze(x, -1); }, randn(Shape{3, 1}, rng));

    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(m);
    CHECK(equal(reshape(x, Shape{3, 2}).value(), tapeflow::reshape(m, Shape{3, 2})));
    CHECK(equal(flatten(x).value(), tapeflow::flatten(m)));
    CHECK(unsqueeze(x, 1).shape() == Shape{2, 1, 3});
    CHECK(equal(unsqueeze(x, -1).value(), tapeflow::unsqueeze(m, -1)));
    CHECK(equal(squeeze(unsqueeze(x, 0), 0).value(), m));
    CHECK_THROWS_AS(reshape(x, Shape{4}), std::invalid_argument);
    CHECK_THROWS_AS(squeeze(x, 0), std::invalid_argument);  // axis 0 has size 2
}

TEST_CASE("transpose and permute") {
    Rng rng(42);
    const Tensor m = randn(Shape{3, 4}, rng);
    const Tensor t = randn(Shape{2, 3, 4}, rng);
    check_shape_op([](const Var& x) { return transpose(x); }, m);
    check_shape_op([](const Var& x) { return transpose(x); }, t);
    for (const std::vector<std::size_t>& axes : std::vector<std::vector<std::size_t>>{
             {2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {2, 1, 0}, {0, 1, 2}}) {
        INFO(fmt::format("axes {}", fmt::join(axes, ", ")));
        check_shape_op([axes](const Var& x) { return permute(x, axes); }, t);
        Tape tape;
        TapeScope scope(tape);
        CHECK(equal(permute(tape.variable(t), axes).value(), tapeflow::permute(t, axes)));
    }
    Tape tape;
    TapeScope scope(tape);
    CHECK(equal(transpose(tape.variable(t)).value(), tapeflow::transpose(t)));
}

TEST_CASE("narrow along each axis") {
    Rng rng(43);
    const Tensor m = randn(Shape{4, 5}, rng);
    const Tensor t = randn(Shape{2, 5, 3}, rng);
    check_shape_op([](const Var& x) { return narrow(x, 0, 1, 2); }, m);
    check_shape_op([](const Var& x) { return narrow(x, 1, 2, 3); }, m);
    check_shape_op([](const Var& x) { return narrow(x, -1, 0, 5); }, m);  // the whole axis
    check_shape_op([](const Var& x) { return narrow(x, 1, 1, 3); }, t);   // middle axis: outer and inner > 1
    check_shape_op([](const Var& x) { return narrow(x, -1, 2, 1); }, t);
    check_shape_op([](const Var& x) { return narrow(x, 0, 1, 1); }, t);

    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(t);
    CHECK(equal(narrow(x, 1, 1, 3).value(), tapeflow::narrow(t, 1, 1, 3)));
    // The tensor op reports an index error (std::out_of_range, a std::logic_error).
    CHECK_THROWS_WITH_AS(narrow(x, 1, 3, 3), doctest::Contains("out of range"), std::logic_error);
}

TEST_CASE("concat of two and three parts, along each axis") {
    Rng rng(44);
    const Tensor a = randn(Shape{2, 3}, rng);
    const Tensor b = randn(Shape{1, 3}, rng);
    const Tensor c = randn(Shape{2, 2}, rng);
    const Tensor d = randn(Shape{2, 1}, rng);
    const auto joined_weighted = [](const Var& y) { return weighted_sum(y); };
    CHECK_GRADCHECK([](const Vars& v) { return concat({v[0], v[1]}, 0); }, {a, b});
    CHECK_GRADCHECK([](const Vars& v) { return concat({v[0], v[1]}, 1); }, {a, c});
    CHECK_GRADCHECK([](const Vars& v) { return concat({v[0], v[1]}, -1); }, {a, c});
    CHECK_GRADCHECK([](const Vars& v) { return concat({v[0], v[1], v[2]}, 1); }, {d, a, c});
    CHECK_GRADCHECK([&](const Vars& v) { return joined_weighted(concat({v[0], v[1], v[2]}, 1)); }, {c, d, a});
    CHECK_GRADCHECK([&](const Vars& v) { return joined_weighted(concat({v[0], v[1], v[0]}, 0)); }, {a, b});
    // A constant part in the middle.
    CHECK_GRADCHECK([d](const Vars& v) { return concat({v[0], Var(d), v[1]}, 1); }, {a, c});
    // 3-D, along the middle axis.
    const Tensor p = randn(Shape{2, 1, 3}, rng), q = randn(Shape{2, 2, 3}, rng), r = randn(Shape{2, 3, 3}, rng);
    CHECK_GRADCHECK([&](const Vars& v) { return joined_weighted(concat({v[0], v[1], v[2]}, 1)); }, {p, q, r});

    Tape tape;
    TapeScope scope(tape);
    const Var av = tape.variable(a), cv = tape.variable(c), dv = tape.variable(d);
    CHECK(equal(concat({dv, av, cv}, 1).value(), tapeflow::concat(std::vector<Tensor>{d, a, c}, 1)));
    CHECK(equal(concat({av}, 0).value(), a));
    CHECK_THROWS_AS(concat(std::vector<Var>{}, 0), std::invalid_argument);
    CHECK_THROWS_AS(concat({av, cv}, 0), std::invalid_argument);  // widths 3 and 2
}

TEST_CASE("split and chunk") {
    Rng rng(45);
    const Tensor m = randn(Shape{2, 6}, rng);
    const std::vector<std::size_t> sizes{1, 3, 2};
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        INFO("piece " << i);
        check_shape_op([i, sizes](const Var& x) { return split(x, 1, sizes)[i]; }, m);
    }
    // All pieces together, weighted differently, so each must send its gradient to its own columns.
    CHECK_GRADCHECK([sizes](const Vars& v) {
        const std::vector<Var> pieces = split(v[0], -1, sizes);
        return weighted_sum(pieces[0]) + 2.0 * weighted_sum(pieces[1]) - weighted_sum(pieces[2]);
    }, {m});

    const Tensor t = randn(Shape{5, 2}, rng);
    CHECK_GRADCHECK([](const Vars& v) {
        const std::vector<Var> pieces = chunk(v[0], 3, 0);  // rows 2, 2, 1
        return concat({pieces[2], pieces[0], pieces[1] * 3.0}, 0);
    }, {t});

    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(m);
    const std::vector<Var> pieces = split(x, 1, sizes);
    const std::vector<Tensor> expected = tapeflow::split(m, 1, sizes);
    REQUIRE(pieces.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(equal(pieces[i].value(), expected[i]));
    const std::vector<Var> chunks = chunk(tape.variable(t), 3, 0);
    REQUIRE(chunks.size() == 3);
    CHECK(chunks[2].shape() == Shape{1, 2});
    CHECK_THROWS_AS(split(x, 1, {2, 2}), std::invalid_argument);
}

TEST_CASE("index_select with repeated indices accumulates") {
    Rng rng(46);
    check_shape_op([](const Var& x) { return index_select(x, 1, {2, 0, 2, 2}); }, randn(Shape{3, 4}, rng));
    check_shape_op([](const Var& x) { return index_select(x, 0, {3, 3, 1}); }, randn(Shape{4, 2}, rng));
    check_shape_op([](const Var& x) { return index_select(x, -1, {1, 1, 0}); }, randn(Shape{2, 3, 2}, rng));
    check_shape_op([](const Var& x) { return index_select(x, 1, {2, 1, 0}); }, randn(Shape{2, 3, 2}, rng));

    Tape tape;
    TapeScope scope(tape);
    const Tensor v{10.0, 20.0, 30.0};
    const Var x = tape.variable(v);
    const Var picked = index_select(x, 0, {2, 0, 2, 2});
    CHECK(equal(picked.value(), Tensor{30.0, 10.0, 30.0, 30.0}));
    CHECK(equal(picked.value(), tapeflow::index_select(v, 0, {2, 0, 2, 2})));
    tape.backward(sum(picked));
    CHECK(equal(x.grad(), Tensor{1.0, 0.0, 3.0}));
    CHECK_THROWS_WITH_AS(index_select(x, 0, {3}), doctest::Contains("out of range"), std::logic_error);
}

TEST_CASE("broadcast_to sums the copies' gradients back") {
    Rng rng(47);
    check_shape_op([](const Var& x) { return broadcast_to(x, Shape{2, 3}); }, randn(Shape{3}, rng));
    check_shape_op([](const Var& x) { return broadcast_to(x, Shape{2, 3}); }, randn(Shape{2, 1}, rng));
    check_shape_op([](const Var& x) { return broadcast_to(x, Shape{2, 2}); }, Tensor::scalar(0.7));
    check_shape_op([](const Var& x) { return broadcast_to(x, Shape{4, 2, 3}); }, randn(Shape{1, 3}, rng));
    check_shape_op([](const Var& x) { return broadcast_to(x, Shape{2, 3}); }, randn(Shape{2, 3}, rng));

    Tape tape;
    TapeScope scope(tape);
    const Tensor v{1.0, 2.0};
    const Var x = tape.variable(v);
    const Var b = broadcast_to(x, Shape{3, 2});
    CHECK(equal(b.value(), tapeflow::broadcast_to(v, Shape{3, 2})));
    tape.backward(sum(b));
    CHECK(equal(x.grad(), Tensor{3.0, 3.0}));
    CHECK_THROWS_AS(broadcast_to(x, Shape{3}), std::invalid_argument);
}
