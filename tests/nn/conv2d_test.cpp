// Conv2d: the forward pass is autograd's conv2d with the layer's weight and bias; PyTorch's default
// initialization (bounds 1/√(C_in·k²)); zero_init; weight normalization starts from the same weight;
// gradchecks through the layer (input and every parameter); shape errors name the layer.
#include "nn/conv2d.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/conv.hpp"
#include "tensor/reduce.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

double max_abs(const Tensor& t) {
    double m = 0;
    for (double v : t.span()) m = std::max(m, std::abs(v));
    return m;
}

}  // namespace

TEST_CASE("Conv2d computes conv2d(x, weight) + bias with PyTorch's default initialization") {
    Rng rng(1);
    Conv2d layer(3, 4, 3, rng);
    REQUIRE(layer.plain_weight() != nullptr);
    REQUIRE(layer.bias() != nullptr);
    CHECK(layer.plain_weight()->shape() == Shape{4, 3, 3, 3});
    // fan_in = 3·3·3 = 27: W and b in U(±1/√27), and spread over it (not all near zero).
    const double bound = 1 / std::sqrt(27.0);
    CHECK(max_abs(layer.plain_weight()->value) <= bound);
    CHECK(max_abs(layer.plain_weight()->value) > 0.8 * bound);
    CHECK(max_abs(layer.bias()->value) <= bound);
    const Tensor x = randn(Shape{2, 3, 5, 4}, rng);
    NoGrad no_grad;
    CHECK(equal(layer(Var(x)).value(), conv2d(x, layer.plain_weight()->value, layer.bias()->value)));
    CHECK(layer.name() == "Conv2d(3 → 4, 3×3)");
    CHECK(layer.parameter_count() == 4 * 27 + 4);
}

TEST_CASE("Conv2d: zero_init gives a zero output; bias = false has no bias") {
    Rng rng(2);
    Conv2d zero(2, 3, 3, rng, {.zero_init = true});
    Conv2d unbiased(2, 3, 1, rng, {.bias = false});
    const Tensor x = randn(Shape{2, 2, 3, 3}, rng);
    NoGrad no_grad;
    CHECK(max_abs(zero(Var(x)).value()) == 0);
    CHECK(unbiased.bias() == nullptr);
    CHECK(unbiased.name() == "Conv2d(2 → 3, 1×1, bias=false)");
    CHECK(equal(unbiased(Var(x)).value(), conv2d(x, unbiased.plain_weight()->value)));
}

TEST_CASE("Conv2d with weight_norm starts from the weight the plain layer draws") {
    Rng a(3), b(3);
    Conv2d plain(2, 3, 3, a);
    Conv2d normalized(2, 3, 3, b, {.weight_norm = true});
    REQUIRE(normalized.direction() != nullptr);
    CHECK(normalized.plain_weight() == nullptr);
    std::vector<std::string> names;
    for (const auto& [name, p] : normalized.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"v", "g", "bias"});
    NoGrad no_grad;
    CHECK(max_abs_diff(normalized.weight().value(), plain.plain_weight()->value) <= 1e-15);
    CHECK(normalized.name() == "Conv2d(2 → 3, 3×3, weight_norm)");
}

TEST_CASE("Conv2d: gradients through the layer, plain and weight-normalized") {
    Rng rng(4);
    for (const bool wn : {false, true}) {
        INFO("weight_norm = " << wn);
        Conv2d layer(2, 2, 3, rng, {.weight_norm = wn});
        const Tensor x = randn(Shape{2, 2, 3, 2}, rng);
        GradcheckOptions options;
        options.parameters = layer.parameters();
        CHECK_GRADCHECK([&](const std::vector<Var>& v) { return layer(v[0]); }, {x}, options);
    }
}

TEST_CASE("Conv2d: bad sizes and inputs name the layer") {
    Rng rng(5);
    CHECK_THROWS_WITH_AS(Conv2d(0, 3, 3, rng), doctest::Contains("positive"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Conv2d(2, 3, 2, rng), doctest::Contains("odd"), std::invalid_argument);
    Conv2d layer(2, 3, 3, rng);
    CHECK_THROWS_WITH_AS(layer(Var(Tensor::ones(Shape{1, 3, 4, 4}))),
                         doctest::Contains("Conv2d(2 → 3, 3×3): expected images [N, 2, H, W], got shape [1, 3, 4, 4]"),
                         std::invalid_argument);
}
