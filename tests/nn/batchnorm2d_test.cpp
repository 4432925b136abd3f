// BatchNorm2d: training mode normalizes every channel over (n, i, j) to mean 0 and variance 1 (then γ, β),
// updates the running averages as torch does (unbiased variance); evaluation uses them; gradcheck
// through the batch statistics; errors.
#include "nn/batchnorm2d.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

TEST_CASE("BatchNorm2d normalizes each channel over the batch and the pixels") {
    // Channel 0 holds 1, 2, 3, 4 (mean 2.5, population variance 1.25); channel 1 holds 10 everywhere.
    const Tensor x(Shape{2, 2, 1, 2}, {1, 2, 10, 10, 3, 4, 10, 10});
    BatchNorm2d bn(2, {.momentum = 0.5, .eps = 1e-12});
    NoGrad no_grad;
    const Tensor y = bn(Var(x)).value();
    const double s = std::sqrt(1.25 + 1e-12);
    CHECK(y[0] == doctest::Approx(-1.5 / s).epsilon(1e-12));
    CHECK(y[5] == doctest::Approx(1.5 / s).epsilon(1e-12));
    CHECK(y[2] == 0);
    // running ← ½·running + ½·batch, with the unbiased variance 1.25·4/3 for channel 0 and 0 for channel 1.
    CHECK(bn.running_mean()[0] == doctest::Approx(1.25));
    CHECK(bn.running_mean()[1] == doctest::Approx(5));
    CHECK(bn.running_var()[0] == doctest::Approx(0.5 + 0.5 * 1.25 * 4 / 3));
    CHECK(bn.running_var()[1] == doctest::Approx(0.5));
    bn.eval();
    const Tensor e = bn(Var(x)).value();
    CHECK(e[0] == doctest::Approx((1 - 1.25) / std::sqrt(bn.running_var()[0] + 1e-12)).epsilon(1e-12));
}

TEST_CASE("BatchNorm2d: gradients through the batch statistics (training) and the running ones (evaluation)") {
    Rng rng(7);
    BatchNorm2d bn(2);
    bn.named_parameters()[0].second->value = randn(Shape{2}, rng);
    const Tensor x = randn(Shape{3, 2, 2, 2}, rng);
    GradcheckOptions options;
    options.parameters = bn.parameters();
    CHECK_GRADCHECK([&](const std::vector<Var>& v) { return bn(v[0]); }, {x}, options);
    // Evaluation mode: the running averages are constants.
    bn.running_mean() = randn(Shape{2}, rng);
    bn.running_var() = rand(Shape{2}, rng, 0.5, 2.0);
    bn.eval();
    CHECK_GRADCHECK([&](const std::vector<Var>& v) { return bn(v[0]); }, {x}, options);
}

TEST_CASE("BatchNorm2d: bad options and inputs name what is wrong") {
    CHECK_THROWS_WITH_AS(BatchNorm2d(0), doctest::Contains("channel"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(BatchNorm2d(2, {.momentum = 2}), doctest::Contains("momentum"), std::invalid_argument);
    BatchNorm2d bn(2);
    CHECK_THROWS_WITH_AS(bn(Var(Tensor::ones(Shape{1, 2, 1, 1}))), doctest::Contains("N·H·W ≥ 2"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(bn(Var(Tensor::ones(Shape{2, 3, 1, 1}))), doctest::Contains("[N, 2, H, W]"),
                         std::invalid_argument);
}
