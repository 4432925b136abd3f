#include "flows/made.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/random.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

TEST_CASE("MADE: the masks of D = 3, one hidden layer of 4, by hand from the degrees") {
    Rng rng(1);
    MADE made(3, rng, {.hidden = {4}, .params_per_dim = 1});
    // Hidden degrees 1 + k mod 2 = 1, 2, 1, 2; inputs 1, 2, 3.
    CHECK(made.hidden_degrees() == std::vector<std::vector<std::size_t>>{{1, 2, 1, 2}});
    REQUIRE(made.masks().size() == 2);
    // Into unit k: m(k) ≥ m(j). Input 1 feeds all, input 2 the degree-2 units, input 3 none.
    CHECK(testing::values(made.masks()[0]) == std::vector<double>{1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 0});
    // Into output d: m(d) > m(k). Output 1 sees nothing, output 2 the degree-1 units, output 3 all.
    CHECK(testing::values(made.masks()[1]) == std::vector<double>{0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1});
    CHECK(made.name() == "MADE(3 → 4 → 1×3)");
    CHECK(testing::parameter_names(made) ==
          std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"});
}

TEST_CASE("MADE: the autodiff Jacobian of every output block is exactly strictly lower triangular") {
    for (const std::size_t d : {1, 2, 5}) {
        CAPTURE(d);
        Rng rng(d);
        MADE made(d, rng, {.hidden = {16, 16}, .params_per_dim = 3, .activation = nn::Activation::tanh});
        testing::randomize_parameters(made, rng, 0.5);
        const Tensor x = randn(Shape{1, d}, rng);
        const Tensor J = jacobian([&](const Var& v) { return made.forward(v); }, x);  // [3D, D]
        REQUIRE(J.shape() == Shape{3 * d, d});
        for (std::size_t p = 0; p < 3; ++p)
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = 0; j < d; ++j) {
                    CAPTURE(p);
                    CAPTURE(i);
                    CAPTURE(j);
                    const double entry = J[(p * d + i) * d + j];
                    // Zero (exactly: the masked weights never enter) on and above the diagonal; every
                    // entry below it is reachable, so non-zero for generic weights.
                    if (j >= i) CHECK(entry == 0.0);
                    else CHECK(entry != 0.0);
                }
    }
}

TEST_CASE("MADE: with a context the hidden degrees start at 0 (units that see only c)") {
    Rng rng(2);
    MADE made(3, rng, {.hidden = {4}, .params_per_dim = 1, .context_dim = 1});
    CHECK(made.hidden_degrees() == std::vector<std::vector<std::size_t>>{{0, 1, 2, 0}});
    // Input 1 feeds the units of degree ≥ 1; every output sees the degree-0 units.
    CHECK(testing::values(made.masks()[0]) == std::vector<double>{0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0});
    CHECK(testing::values(made.masks()[1]) == std::vector<double>{1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1});
}

TEST_CASE("MADE: a context reaches every output, the first coordinate's included") {
    Rng rng(3);
    MADE made(3, rng, {.hidden = {8}, .params_per_dim = 2, .context_dim = 2, .activation = nn::Activation::tanh});
    testing::randomize_parameters(made, rng, 0.5);
    const Tensor x = randn(Shape{1, 3}, rng);
    const Tensor J = jacobian([&](const Var& c) { return made.forward(Var(x), c); }, randn(Shape{1, 2}, rng));
    REQUIRE(J.shape() == Shape{6, 2});
    for (std::size_t i = 0; i < 6; ++i) CHECK_MESSAGE(J[i * 2] != 0.0, "output " << i);
    CHECK(made.name() == "MADE(3 → 8 → 2×3 + context 2)");
    // Gradients w.r.t. x, c and every weight, by finite differences.
    const GradcheckResult r = gradcheck([&](const std::vector<Var>& v) { return flatten(made.forward(v[0], v[1])); },
                                        {randn(Shape{2, 3}, rng), randn(Shape{2, 2}, rng)}, {.parameters = made.parameters()});
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("MADE: a fresh MADE outputs zeros (last layer zero), and bad sizes are named") {
    Rng rng(4);
    MADE made(2, rng, {.hidden = {4}});
    CHECK(testing::values(made.forward(Var(Tensor{{0.3, -2.0}})).value()) == std::vector<double>{0, 0, 0, 0});
    CHECK(made.calls() == 1);
    CHECK_THROWS_WITH_AS(MADE(0, rng), doctest::Contains("D must be at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(MADE(2, rng, {.hidden = {4, 0}}), doctest::Contains("at least 1 unit"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(MADE(2, rng, {.params_per_dim = 0}), doctest::Contains("params_per_dim"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(made.forward(Var(Tensor{{1.0, 2.0, 3.0}})),
                         doctest::Contains("MADE::forward: expects dimension D = 2, got shape [1, 3]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(made.forward(Var(Tensor{{1.0, 2.0}}), Var(Tensor(Shape{1, 1}, {1.0}))),
                         doctest::Contains("takes no context, but got one of shape [1, 1]"), std::invalid_argument);
    MADE conditional(2, rng, {.context_dim = 1});
    CHECK_THROWS_WITH_AS(conditional.forward(Var(Tensor{{1.0, 2.0}})), doctest::Contains("needs a context [N, 1], got none"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conditional.forward(Var(Tensor{{1.0, 2.0}}), Var(Tensor(Shape{2, 1}, {1.0, 2.0}))),
                         doctest::Contains("expects a context [1, 1] (one row per sample), got shape [2, 1]"),
                         std::invalid_argument);
}
