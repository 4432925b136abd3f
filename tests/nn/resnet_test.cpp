// make_resnet: the layer sequence of the docs, an exactly zero output at initialization (the zero last
// convolution), the residual connection, and gradients through a whole network once the last layer is
// no longer zero.
#include "nn/resnet.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

TEST_CASE("make_resnet: conv, residual blocks, norm, ReLU, zero conv; the output starts at zero") {
    Rng rng(8);
    auto net = make_resnet(2, 4, rng, {.hidden = 8, .blocks = 2});
    REQUIRE(net->size() == 5);
    CHECK((*net)[0].name() == "Conv2d(2 → 8, 3×3, weight_norm)");
    CHECK((*net)[1].name() == "ResidualBlock(8)");
    CHECK((*net)[2].name() == "ResidualBlock(8)");
    CHECK((*net)[3].name() == "BatchNorm2d(8) + ReLU");  // fused: BatchNorm2dOptions::relu
    CHECK((*net)[4].name() == "Conv2d(8 → 4, 3×3)");
    const Tensor x = randn(Shape{3, 2, 5, 6}, rng);
    NoGrad no_grad;
    const Tensor y = (*net)(Var(x)).value();
    CHECK(y.shape() == Shape{3, 4, 5, 6});
    for (double v : y.span()) CHECK(v == 0);
}

TEST_CASE("ResidualBlock adds its body to its input") {
    Rng rng(9);
    ResidualBlock block(3, rng, {.batch_norm = false});
    const Tensor h = randn(Shape{1, 3, 2, 2}, rng);
    NoGrad no_grad;
    CHECK(max_abs_diff(block(Var(h)).value(), h) > 0);
    // With the body's last convolution zeroed, the body outputs 0 and the block is the identity.
    auto& last = dynamic_cast<Conv2d&>(block.body()[block.body().size() - 1]);
    last.length()->value.fill(0);  // w = g·v/‖v‖ = 0
    last.bias()->value.fill(0);
    CHECK(equal(block(Var(h)).value(), h));
}

TEST_CASE("make_resnet: gradients through the whole network (evaluation mode)") {
    Rng rng(10);
    auto net = make_resnet(1, 2, rng, {.hidden = 2, .blocks = 1});
    // Make the last layer non-zero so that gradients reach every layer.
    for (Parameter* p : net->parameters()) p->value = randn(p->shape(), rng, 0.0, 0.5);
    // Positive lengths g keep every weight-normalized convolution away from w = 0.
    for (auto& [name, p] : net->named_parameters())
        if (name.ends_with(".g")) p->value = rand(p->shape(), rng, 0.5, 1.5);
    net->eval();
    const Tensor x = randn(Shape{2, 1, 3, 2}, rng);
    GradcheckOptions options;
    options.parameters = net->parameters();
    CHECK_GRADCHECK([&](const std::vector<Var>& v) { return (*net)(v[0]); }, {x}, options);
}

TEST_CASE("make_resnet: zero channel counts are rejected") {
    Rng rng(11);
    CHECK_THROWS_WITH_AS(make_resnet(0, 2, rng), doctest::Contains("in 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_resnet(1, 2, rng, {.hidden = 0}), doctest::Contains("hidden 0"), std::invalid_argument);
}
