// weight_norm: every output slice of w has length |g_o| and v's direction; values by hand; gradcheck
// in v and g; slice_norms.
#include "nn/weight_norm.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

TEST_CASE("weight_norm rescales each slice to length g: a hand-computed case") {
    // Slices (3, 4) and (0, 2) have norms 5 and 2; g = (10, −1) gives (6, 8) and (0, −1).
    const Tensor v{{3, 4}, {0, 2}};
    const Var w = weight_norm(Var(v), Var(Tensor{10, -1}));
    CHECK(equal(w.value(), Tensor{{6, 8}, {0, -1}}));
    CHECK(equal(slice_norms(v), Tensor{5, 2}));
    CHECK(equal(weight_norm(Var(v), Var(slice_norms(v))).value(), v));
}

TEST_CASE("weight_norm: gradients in v and g, for a conv-shaped weight") {
    Rng rng(6);
    const Tensor v = randn(Shape{3, 2, 3, 3}, rng);
    const Tensor g = randn(Shape{3}, rng);
    CHECK_GRADCHECK([](const std::vector<Var>& x) { return weight_norm(x[0], x[1]); }, {v, g});
}

TEST_CASE("weight_norm: g must have one entry per slice") {
    CHECK_THROWS_WITH_AS(weight_norm(Var(Tensor::ones(Shape{3, 2})), Var(Tensor::ones(Shape{2}))),
                         doctest::Contains("g [v.shape()[0]], got v [3, 2] and g [2]"), std::invalid_argument);
}
