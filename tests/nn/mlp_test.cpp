#include "nn/mlp.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

using tapeflow::testing::parameter_names;

}  // namespace

TEST_CASE("MLP is Linear, act, Linear, act, Linear with no activation after the last") {
    Rng rng(1);
    MLP mlp({2, 64, 64, 4}, rng);
    REQUIRE(mlp.size() == 5);
    CHECK(mlp.depth() == 3);
    CHECK(mlp[0].name() == "Linear(2 → 64)");
    CHECK(mlp[1].name() == "ReLU");
    CHECK(mlp[2].name() == "Linear(64 → 64)");
    CHECK(mlp[3].name() == "ReLU");
    CHECK(mlp[4].name() == "Linear(64 → 4)");
    CHECK(&mlp.linear(2) == &mlp[4]);
    CHECK(parameter_names(mlp) ==
          std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"});
    CHECK(mlp.parameter_count() == (2 * 64 + 64) + (64 * 64 + 64) + (64 * 4 + 4));
    CHECK(mlp.name() == "MLP(2 → 64 → 64 → 4, relu)");
    CHECK(mlp.sizes() == std::vector<std::size_t>{2, 64, 64, 4});
}

TEST_CASE("MLP summary") {
    Rng rng(1);
    MLP mlp({2, 3, 1}, rng, {.activation = Activation::tanh});
    CHECK(mlp.summary() ==
          "MLP(2 → 3 → 1, tanh)\n"
          "  parameter  shape                count\n"
          "  0.weight   [2, 3]                   6\n"
          "  0.bias     [3]                      3\n"
          "  2.weight   [3, 1]                   3\n"
          "  2.bias     [1]                      1\n"
          "  total                              13\n");
}

TEST_CASE("MLP options choose the activation and the initialization") {
    Rng rng(2);
    MLP mlp({3, 5, 5, 2}, rng,
            {.activation = Activation::leaky_relu, .activation_options = {.negative_slope = 0.1},
             .linear = {.bias = false}});
    CHECK(mlp[1].name() == "LeakyReLU(negative_slope=0.1)");
    CHECK(mlp.parameter_count() == 3 * 5 + 5 * 5 + 5 * 2);
    Rng a(3), b(3);
    MLP single({4, 2}, a, {.linear = {.init = Init::xavier_uniform()}});
    CHECK(single.size() == 1);
    CHECK(equal(single.linear(0).weight().value, xavier_uniform(Shape{4, 2}, 4, 2, b)));
}

TEST_CASE("zero_init_last makes the output exactly zero and leaves the other layers as drawn") {
    Rng a(5), b(5);
    MLP zeroed({2, 16, 16, 4}, a, {.zero_init_last = true});
    MLP plain({2, 16, 16, 4}, b);
    CHECK(equal(zeroed.linear(2).weight().value, Tensor::zeros(Shape{16, 4})));
    CHECK(equal(zeroed.linear(2).bias()->value, Tensor::zeros(Shape{4})));
    CHECK(equal(zeroed.linear(0).weight().value, plain.linear(0).weight().value));
    CHECK(equal(zeroed.linear(1).bias()->value, plain.linear(1).bias()->value));
    Rng data(6);
    NoGrad no_grad;
    const Tensor y = zeroed(Var(randn(Shape{32, 2}, data, 0.0, 3.0))).value();
    CHECK(equal(y, Tensor::zeros(Shape{32, 4})));
}

TEST_CASE("MLP gradients match finite differences for the input and every parameter") {
    Rng rng(7);
    for (const Activation act : {Activation::tanh, Activation::softplus, Activation::elu, Activation::silu,
                                 Activation::relu, Activation::leaky_relu, Activation::sigmoid}) {
        INFO(to_string(act));
        MLP mlp({3, 4, 4, 2}, rng, {.activation = act});
        const GradcheckResult r = gradcheck([&](const std::vector<Var>& v) { return mlp(v[0]); },
                                            {randn(Shape{3, 3}, rng)}, {.parameters = mlp.parameters()});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("jvp through an MLP (forward mode through Linear, the fused Linear → ReLU and every activation) matches central differences") {
    Rng rng(8);
    for (const Activation act : {Activation::relu, Activation::tanh, Activation::elu, Activation::silu,
                                 Activation::softplus, Activation::leaky_relu, Activation::sigmoid}) {
        INFO(to_string(act));
        MLP mlp({3, 5, 4, 2}, rng, {.activation = act});
        tapeflow::testing::randomize_parameters(mlp, rng, 0.7);  // a nonzero last layer
        const Tensor x = randn(Shape{4, 3}, rng), v = randn(x.shape(), rng);
        const GradcheckResult r = jvpcheck([&](const std::vector<Var>& in) { return mlp(in[0]); }, {x}, {v});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("a ReLU MLP records each Linear → ReLU pair as one fused node, with the layers' values") {
    Rng rng(12);
    MLP mlp({3, 8, 8, 2}, rng);
    const Tensor x = randn(Shape{5, 3}, rng);
    Tape& tape = Tape::current();
    const Var y = mlp(Var(x));
    // Layer by layer through Sequential (Linear, ReLU, ...), which records them one node each.
    const Var unfused = mlp.Sequential::forward(Var(x));
    CHECK(max_abs_diff(y.value(), unfused.value()) <= 1e-14);
    std::vector<std::string> ops;
    for (std::size_t i = 0; i < tape.size(); ++i) ops.emplace_back(tape.node(static_cast<std::uint32_t>(i)).op);
    CHECK(std::count(ops.begin(), ops.end(), std::string("linear_relu")) == 2);
    CHECK(std::count(ops.begin(), ops.end(), std::string("relu")) == 2);  // only the unfused evaluation's
    tape.clear();
}

TEST_CASE("the same seed builds a bit-identical MLP") {
    Rng a(11), b(11);
    MLP ma({3, 8, 2}, a), mb({3, 8, 2}, b);
    const auto pa = ma.parameters(), pb = mb.parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(equal(pa[i]->value, pb[i]->value));
}

TEST_CASE("MLP rejects too few sizes and a zero size") {
    Rng rng(0);
    CHECK_THROWS_WITH_AS(MLP({3}, rng), "MLP: needs at least two sizes (in and out), got 1 ([3])", std::invalid_argument);
    CHECK_THROWS_WITH_AS(MLP({2, 0, 1}, rng), "MLP: size 1 is zero in [2, 0, 1]", std::invalid_argument);
    MLP mlp({2, 2}, rng);
    CHECK_THROWS_WITH_AS(mlp.linear(1), "MLP::linear: layer 1 requested, but there are 1", std::out_of_range);
}

TEST_CASE("train and eval reach every layer of an MLP") {
    Rng rng(0);
    MLP mlp({2, 3, 3, 1}, rng);
    mlp.eval();
    for (std::size_t i = 0; i < mlp.size(); ++i) CHECK_FALSE(mlp[i].training());
    mlp.train();
    for (std::size_t i = 0; i < mlp.size(); ++i) CHECK(mlp[i].training());
}
