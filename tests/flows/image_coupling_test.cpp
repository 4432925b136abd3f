// ImageAffineCoupling: both masks printed by hand, a hand-computed coupling with a fixed conditioner
// output, the conditioner seeing only b ⊙ x, identity at initialization, conformance for both masks
// (with the ResNet conditioner, random parameters), errors.
#include "flows/image_coupling.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <stdexcept>

#include "flows/conformance.hpp"
#include "tensor/random.hpp"
#include "tests/flows/image_test_helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Returns the same [N, 2C, H, W] for every input, and remembers the last input it saw.
class Fixed : public nn::Layer {
public:
    explicit Fixed(Tensor out) : out_(std::move(out)) {}
    Var forward(const Var& x) override {
        seen = x.value();
        Tensor batch(Shape{x.shape()[0], out_.shape()[0], out_.shape()[1], out_.shape()[2]});
        for (std::size_t n = 0; n < x.shape()[0]; ++n)
            std::copy_n(out_.data(), out_.numel(), batch.data() + n * out_.numel());
        return Var(batch);
    }
    std::string name() const override { return "Fixed"; }
    Tensor seen;

private:
    Tensor out_;
};

}  // namespace

TEST_CASE("image_mask: the checkerboard and the channel halves") {
    CHECK(equal(image_mask({2, 2, 3}, ImageMask::checkerboard, 0),
                Tensor(Shape{2, 2, 3}, {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1})));
    CHECK(equal(image_mask({1, 2, 2}, ImageMask::checkerboard, 1), Tensor(Shape{1, 2, 2}, {1, 0, 0, 1})));
    CHECK(equal(image_mask({4, 1, 2}, ImageMask::channel, 0), Tensor(Shape{4, 1, 2}, {1, 1, 1, 1, 0, 0, 0, 0})));
    CHECK(equal(image_mask({4, 1, 2}, ImageMask::channel, 1), Tensor(Shape{4, 1, 2}, {0, 0, 0, 0, 1, 1, 1, 1})));
    CHECK_THROWS_WITH_AS(image_mask({3, 2, 2}, ImageMask::channel, 0), doctest::Contains("3 channels"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(image_mask({1, 2, 2}, ImageMask::checkerboard, 2), doctest::Contains("parity"),
                         std::invalid_argument);
}

TEST_CASE("ImageAffineCoupling: a hand-computed 1 × 2 × 2 checkerboard coupling") {
    // b = [[0, 1], [1, 0]]: pixels (0,0) and (1,1) are updated. s_raw = atanh(0.5) at (0,0), so with
    // scale 1 the log-scale is 0.5 there; t = 2 at (1,1).
    Tensor out = Tensor::zeros(Shape{2, 2, 2});
    out[0] = std::atanh(0.5);
    out[4 + 3] = 2;
    auto fixed = std::make_unique<Fixed>(out);
    Fixed& conditioner = *fixed;
    ImageAffineCoupling c({1, 2, 2}, ImageMask::checkerboard, 0, std::move(fixed));
    const Tensor x(Shape{1, 4}, {1, 3, 5, 7});
    const Transformed z = c.inverse(Var(x));
    CHECK(z.value.value()[0] == doctest::Approx(std::exp(0.5)).epsilon(1e-14));
    CHECK(z.value.value()[1] == 3);
    CHECK(z.value.value()[2] == 5);
    CHECK(z.value.value()[3] == 9);
    CHECK(z.log_abs_det_jacobian.value()[0] == doctest::Approx(0.5).epsilon(1e-14));
    // The conditioner saw b ⊙ x.
    CHECK(equal(conditioner.seen, Tensor(Shape{1, 1, 2, 2}, {0, 3, 5, 0})));
    const Transformed back = c.forward(z.value);
    CHECK(max_abs_diff(back.value.value(), x) <= 1e-14);
    CHECK(back.log_abs_det_jacobian.value()[0] == doctest::Approx(-0.5).epsilon(1e-14));
}

TEST_CASE("ImageAffineCoupling with its ResNet conditioner starts as the identity") {
    Rng rng(2);
    ImageAffineCoupling c({2, 4, 4}, ImageMask::channel, 1, rng, {.hidden = 4});
    const Tensor x = randn(Shape{3, 32}, rng);
    NoGrad no_grad;
    const Transformed z = c.inverse(Var(x));
    CHECK(equal(z.value.value(), x));
    CHECK(equal(z.log_abs_det_jacobian.value(), Tensor::zeros(Shape{3})));
    CHECK(c.name() == "ImageAffineCoupling([2, 4, 4], channel mask, parity 1)");
}

TEST_CASE("ImageAffineCoupling: conformance with both masks (ResNet conditioners, random parameters)") {
    Rng rng(3);
    for (const ImageMask kind : {ImageMask::checkerboard, ImageMask::channel})
        for (const std::size_t parity : {0, 1}) {
            const ImageShape image = kind == ImageMask::checkerboard ? ImageShape{1, 2, 3} : ImageShape{2, 2, 2};
            ImageAffineCoupling c(image, kind, parity, rng, {.hidden = 3});
            testing::randomize(c, rng);
            INFO(c.name());
            CHECK_BIJECTOR(c, randn(Shape{8, image.numel()}, rng), {.mc_samples = 5000});
        }
}

TEST_CASE("ImageAffineCoupling: a conditioner of the wrong width and wrong batches are rejected") {
    auto narrow = std::make_unique<Fixed>(Tensor::zeros(Shape{1, 2, 2}));
    ImageAffineCoupling c({1, 2, 2}, ImageMask::checkerboard, 0, std::move(narrow));
    CHECK_THROWS_WITH_AS(c.inverse(Var(Tensor::ones(Shape{1, 4}))), doctest::Contains("[N, 2C, H, W] = [1, 2, 2, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(c.forward(Var(Tensor::ones(Shape{1, 5}))), doctest::Contains("[1, 2, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ImageAffineCoupling({1, 2, 2}, ImageMask::checkerboard, 0, nullptr),
                         doctest::Contains("null"), std::invalid_argument);
}
