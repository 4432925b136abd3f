// Squeeze: the 2 × 2 space-to-depth of a hand-written 1 × 4 × 4 image, the inverse permutation, log-det 0,
// conformance, and images it cannot squeeze.
#include "flows/squeeze.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

#include "flows/conformance.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

TEST_CASE("Squeeze moves every 2 × 2 block into 4 channels: a hand-written 1 × 4 × 4 image") {
    Squeeze s({1, 4, 4});
    CHECK(s.latent_shape() == ImageShape{4, 2, 2});
    const Tensor x = Tensor::arange(0, 16).reshape(Shape{1, 16});
    const Transformed z = s.inverse(Var(x));
    // Channel 2a + b holds the pixels (2i + a, 2j + b): offsets (0,0), (0,1), (1,0), (1,1).
    CHECK(equal(z.value.value(), Tensor(Shape{1, 16}, {0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15})));
    CHECK(equal(z.log_abs_det_jacobian.value(), Tensor{0.0}));
    CHECK(equal(s.forward(z.value).value.value(), x));
    CHECK(s.name() == "Squeeze([1, 4, 4] → [4, 2, 2])");
}

TEST_CASE("Squeeze: two channels of 2 × 6 keep their channels apart") {
    Squeeze s({2, 2, 6});
    const Tensor x = Tensor::arange(0, 24).reshape(Shape{1, 24});
    const Tensor z = s.inverse(Var(x)).value.value();
    // Channel 0 of the image becomes channels 0-3, channel 1 (values 12…23) channels 4-7.
    CHECK(equal(z, Tensor(Shape{1, 24}, {0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11, 12, 14, 16, 13, 15, 17, 18, 20, 22,
                                          19, 21, 23})));
}

TEST_CASE("Squeeze: conformance") {
    Rng rng(1);
    Squeeze s({2, 2, 2});
    CHECK_BIJECTOR(s, randn(Shape{8, 8}, rng), {.mc_samples = 5000});
}

TEST_CASE("Squeeze: odd sizes and wrong batches are rejected") {
    CHECK_THROWS_WITH_AS(Squeeze({1, 3, 4}), doctest::Contains("even height and width"), std::invalid_argument);
    Squeeze s({1, 2, 2});
    CHECK_THROWS_WITH_AS(s.inverse(Var(Tensor::ones(Shape{2, 5}))), doctest::Contains("D = 4"), std::invalid_argument);
}
