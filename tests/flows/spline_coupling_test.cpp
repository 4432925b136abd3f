#include "flows/spline_coupling.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/reduce.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/permutation.hpp"
#include "nn/mlp.hpp"
#include "tensor/random.hpp"
#include "tensor/stable.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

using testing::randomize_parameters;

constexpr SplineOptions hand_options{.bins = 2, .bound = 1, .min_bin_width = 0, .min_bin_height = 0, .min_derivative = 0};

}  // namespace

TEST_CASE("spline coupling starts as the identity") {
    Rng rng(1);
    SplineCoupling c(Tensor{1.0, 0.0, 1.0}, {16}, rng, {.bins = 4, .bound = 2});
    const Tensor z = randn(Shape{10, 3}, rng) * 2.0;
    const Transformed x = c.forward(Var(z));
    for (std::size_t i = 0; i < z.numel(); ++i) CHECK(std::abs(x.value.value()[i] - z[i]) <= 1e-14);
    for (std::size_t n = 0; n < 10; ++n) CHECK(std::abs(x.log_abs_det_jacobian.value()[n]) <= 1e-13);
    CHECK(c.name() == "SplineCoupling(D = 3, mask [1, 0, 1], K = 4, B = 2)");
}

TEST_CASE("spline coupling by hand: mask [1, 0], the conditioner a linear map of the copied coordinate") {
    // MLP 2 → 5 with no hidden layer: raw = W ᵀ(b ⊙ z) + bias. The bias is the hand spline of
    // spline_test.cpp (x-knots −1, 0, 1; y-knots −1, −1/2, 1; δ = 1, 2, 1); W moves the middle
    // derivative's raw value by 0 (row of z₂, which the mask zeroes) and the heights by z₁.
    Rng rng(2);
    auto mlp = std::make_unique<nn::MLP>(std::vector<std::size_t>{2, 5}, rng);
    const double r = stable::inverse_softplus(2) - stable::inverse_softplus(1);
    mlp->linear(0).weight().value = Tensor::zeros(Shape{2, 5});
    mlp->linear(0).bias()->value = Tensor{0.0, 0.0, 0.0, std::log(3.0), r};
    SplineCoupling c(Tensor{1.0, 0.0}, std::move(mlp), hand_options);
    // z₂ = −1/2 → −13/16 with g' = 1/4; z₂ = 1/2 → 3/8 with g' = 3/2; z₂ = 3 (tail) → 3. z₁ is copied.
    const Tensor z{{0.7, -0.5}, {-4.0, 0.5}, {0.2, 3.0}};
    const Transformed x = c.forward(Var(z));
    const Tensor expected{{0.7, -13.0 / 16}, {-4.0, 3.0 / 8}, {0.2, 3.0}};
    const double log_det[3] = {std::log(0.25), std::log(1.5), 0.0};
    for (std::size_t i = 0; i < 6; ++i) CHECK(std::abs(x.value.value()[i] - expected[i]) <= 1e-15);
    for (std::size_t n = 0; n < 3; ++n) CHECK(std::abs(x.log_abs_det_jacobian.value()[n] - log_det[n]) <= 1e-15);
    const Transformed back = c.inverse(x.value);
    for (std::size_t i = 0; i < 6; ++i) CHECK(std::abs(back.value.value()[i] - z[i]) <= 1e-15);
    for (std::size_t n = 0; n < 3; ++n) CHECK(std::abs(back.log_abs_det_jacobian.value()[n] + log_det[n]) <= 1e-15);

    // Now let z₁ set the heights: raw_h₁ = log 3 · z₁, so z₁ = 1 gives the hand spline and z₁ = 0
    // equal heights (y-knots −1, 0, 1; s = 1, δ = 1, 2, 1): at z₂ = 1/2, ξ = 1/2 in bin 1,
    // g = 0 + 1·(1/4 + 2/4)/(1 + 1/4) = 3/5, g' = (1/4 + 2/4 + 2/4)/(5/4)² = 4/5.
    auto& lin = dynamic_cast<nn::MLP&>(c.conditioner()).linear(0);
    lin.weight().value = Tensor{{0.0, 0.0, 0.0, std::log(3.0), 0.0}, {9.0, 9.0, 9.0, 9.0, 9.0}};  // row 2 reads b ⊙ z: 0
    lin.bias()->value = Tensor{0.0, 0.0, 0.0, 0.0, r};
    const Transformed y = c.forward(Var(Tensor{{1.0, 0.5}, {0.0, 0.5}}));
    CHECK(std::abs(y.value.value()[1] - 3.0 / 8) <= 1e-15);
    CHECK(std::abs(y.value.value()[3] - 3.0 / 5) <= 1e-15);
    CHECK(std::abs(y.log_abs_det_jacobian.value()[1] - std::log(0.8)) <= 1e-15);
}

TEST_CASE("spline coupling passes the conformance kit, alone and inside a Flow") {
    Rng rng(3);
    SplineCoupling c(Tensor{0.0, 1.0, 0.0}, {8}, rng, {.bins = 5, .bound = 2}, nn::Activation::tanh);
    randomize_parameters(c, rng, 0.25);
    const Tensor points = randn(Shape{40, 3}, rng) * 1.5;
    // Chosen points: the tails of both transformed coordinates, and the edges ±B stepped inside.
    const Tensor at{{-3.0, 0.2, 2.5}, {1.9999, -0.4, -1.9999}, {0.3, 1.0, 4.0}};
    CHECK_BIJECTOR(c, points, {.gradcheck_at = at, .mc_samples = 5000});

    Flow flow(std::make_unique<StandardNormal>(2));
    flow.add(std::make_unique<SplineCoupling>(Tensor{1.0, 0.0}, std::vector<std::size_t>{8}, rng, SplineOptions{.bins = 4}));
    flow.add(Permutation::reverse(2));
    flow.add(std::make_unique<SplineCoupling>(Tensor{1.0, 0.0}, std::vector<std::size_t>{8}, rng, SplineOptions{.bins = 4}));
    randomize_parameters(flow, rng, 0.4);
    CHECK_BIJECTOR(flow, randn(Shape{30, 2}, rng));
}

TEST_CASE("conditional spline coupling: the context steers the splines, and the kit passes at fixed contexts") {
    Rng rng(4);
    SplineCoupling c(Tensor{1.0, 0.0}, {8}, rng, {.bins = 4, .bound = 2}, nn::Activation::tanh, 2);
    randomize_parameters(c, rng, 0.25);
    CHECK(c.name() == "SplineCoupling(D = 2, mask [1, 0], K = 4, B = 2, context C = 2)");
    const Tensor points = randn(Shape{20, 2}, rng);
    const Tensor contexts{{0.5, -1.0}, {2.0, 0.3}};
    CHECK_CONDITIONAL_BIJECTOR(c, points, contexts, {.mc_samples = 5000});
    // Two contexts, one point: different maps of the transformed coordinate, same copied one.
    const Var z(Tensor{{0.4, 0.9}, {0.4, 0.9}});
    const Transformed x = c.forward(z, Var(contexts));
    CHECK(x.value.value()[0] == 0.4);
    CHECK(x.value.value()[2] == 0.4);
    CHECK(std::abs(x.value.value()[1] - x.value.value()[3]) > 1e-3);
    // In a ConditionalFlow, log p(x | c) is per sample and finite.
    ConditionalFlow flow(std::make_unique<StandardNormal>(2), 2);
    flow.add(std::make_unique<SplineCoupling>(Tensor{1.0, 0.0}, std::vector<std::size_t>{8}, rng, SplineOptions{.bins = 4},
                                              nn::Activation::relu, 2));
    const Var lp = flow.log_prob(z, Var(contexts));
    CHECK(lp.shape() == Shape{2});
    CHECK(std::isfinite(lp.value()[0]));
    CHECK_THROWS_AS(c.forward(z), std::invalid_argument);  // no context given
}

TEST_CASE("spline coupling: bad input gives clear errors") {
    Rng rng(5);
    CHECK_THROWS_WITH_AS(SplineCoupling(Tensor{1.0, 0.0}, nullptr), "SplineCoupling: the conditioner is null",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(SplineCoupling(Tensor{1.0, 0.0}, {8}, rng, {.bins = 0}),
                         "SplineCoupling: the number of bins K must be at least 1, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(SplineCoupling(Tensor{1.0, 0.0}, {8}, rng, {.bound = -2}),
                         "SplineCoupling: the bound B must be finite and > 0, got -2", std::invalid_argument);
    CHECK_THROWS_AS(SplineCoupling(Tensor{1.0, 1.0}, {8}, rng), std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        SplineCoupling(Tensor{1.0, 0.0}, std::make_unique<nn::MLP>(std::vector<std::size_t>{2, 4, 6}, rng), {.bins = 2}),
        "SplineCoupling: the conditioner must map D + C = 2 + 0 inputs to M(3K − 1) = 5 outputs (the raw spline "
        "parameters of the transformed coordinates), but it is MLP(2 → 4 → 6, relu)",
        std::invalid_argument);
    SplineCoupling c(Tensor{1.0, 0.0}, {8}, rng, {.bins = 2}, nn::Activation::relu, 1);
    CHECK_THROWS_WITH_AS(c.forward(Var(Tensor(Shape{1, 2}, {0.0, 1.0})), Var(Tensor(Shape{1, 2}, {1.0, 2.0}))),
                         "SplineCoupling: expects a context [1, 1] (one row per sample), got shape [1, 2]",
                         std::invalid_argument);
    CHECK_THROWS_AS(c.inverse(Var(Tensor{{0.0, 1.0, 2.0}}), Var(Tensor(Shape{1, 1}, {1.0}))), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_spline_conditioner(2, 3, 4, {8}, rng),
                         "make_spline_conditioner: the transformed coordinates M must lie in 1 … D = 2, got 3",
                         std::invalid_argument);
}
