// Gradchecks of conv2d with respect to every argument (input, weight, bias; each alone and all
// together) on odd sizes — a 1 × 1 image under a 3 × 3 kernel, one channel, H ≠ W, a 1 × 1 kernel,
// one image and several — and of pad2d, per_channel and sum_per_channel; values equal the tensor ops'.
#include "autograd/conv.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "autograd/elementwise.hpp"
#include "tensor/conv.hpp"
#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

TEST_CASE("conv2d: gradients with respect to the input, the weight and the bias") {
    struct Case {
        std::size_t n, c, h, w, out, k;
    };
    const std::vector<Case> cases = {{1, 1, 1, 1, 1, 3}, {2, 1, 3, 5, 2, 3}, {1, 2, 4, 3, 2, 3},
                                     {2, 3, 2, 3, 2, 1}, {3, 2, 1, 4, 1, 3}};
    Rng rng(21);
    for (const Case& c : cases) {
        INFO(fmt::format("x [{}, {}, {}, {}], {} × {} kernel, {} out", c.n, c.c, c.h, c.w, c.k, c.k, c.out));
        const Tensor x = randn(Shape{c.n, c.c, c.h, c.w}, rng);
        const Tensor w = randn(Shape{c.out, c.c, c.k, c.k}, rng);
        const Tensor b = randn(Shape{c.out}, rng);
        CHECK_GRADCHECK([](const Vars& v) { return conv2d(v[0], v[1], v[2]); }, {x, w, b});
        CHECK_GRADCHECK([](const Vars& v) { return conv2d(v[0], v[1]); }, {x, w});
        // One argument at a time: only that argument's backward product runs.
        CHECK_GRADCHECK([w, b](const Vars& v) { return conv2d(v[0], Var(w), Var(b)); }, {x});
        CHECK_GRADCHECK([x, b](const Vars& v) { return conv2d(Var(x), v[0], Var(b)); }, {w});
        CHECK_GRADCHECK([x, w](const Vars& v) { return conv2d(Var(x), Var(w), v[0]); }, {b});
    }
}

TEST_CASE("conv2d: the tape's value is the tensor op's, and an undefined bias means none") {
    Rng rng(22);
    const Tensor x = randn(Shape{2, 2, 3, 4}, rng);
    const Tensor w = randn(Shape{3, 2, 3, 3}, rng);
    Tape tape;
    TapeScope scope(tape);
    const Var vx = tape.variable(x);
    CHECK(equal(conv2d(vx, Var(w), Var()).value(), tapeflow::conv2d(x, w)));
    CHECK(tape.node(tape.size() - 1).n_inputs == 2);
}

TEST_CASE("pad2d, per_channel and sum_per_channel: gradients") {
    Rng rng(23);
    const Tensor x = randn(Shape{2, 3, 2, 3}, rng);
    const Tensor scale = randn(Shape{3}, rng);
    CHECK_GRADCHECK([](const Vars& v) { return pad2d(v[0], 1, 2, 0, 1); }, {x});
    CHECK_GRADCHECK([](const Vars& v) { return sum_per_channel(v[0]); }, {x});
    CHECK_GRADCHECK([](const Vars& v) { return v[0] * per_channel(v[1]); }, {x, scale});
    const Var scaled = Var(x) * per_channel(Var(scale));
    CHECK(scaled.value().at({1, 2, 1, 0}) == x.at({1, 2, 1, 0}) * scale[2]);
    CHECK_THROWS_WITH_AS(per_channel(Var(x)), doctest::Contains("[C]"), std::invalid_argument);
}
