#include "nn/optimizer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// Two updates on p = [0.5, −1.5, 2] with the gradients g₁ = [0.1, −0.2, 0.3], then
// g₂ = [−0.4, 0.25, 0.05]. The expected parameters after each step were computed from the formulas in
// optimizer.hpp in 50-digit arithmetic (mpmath) from these same doubles, and rounded to 17 digits.
const Tensor p0{0.5, -1.5, 2.0};
const Tensor g1{0.1, -0.2, 0.3};
const Tensor g2{-0.4, 0.25, 0.05};

void check_close(const Tensor& actual, const Tensor& expected) {
    REQUIRE(actual.shape() == expected.shape());
    for (std::size_t i = 0; i < actual.numel(); ++i) {
        INFO("element ", i, ": ", actual[i], " vs ", expected[i]);
        CHECK(std::abs(actual[i] - expected[i]) <= 1e-14 * std::abs(expected[i]));
    }
}

template <class Make>
void check_two_steps(Make make, const Tensor& after1, const Tensor& after2) {
    Parameter p(p0.clone());
    auto optimizer = make(std::vector<Parameter*>{&p});
    p.grad = g1.clone();
    optimizer->step();
    check_close(p.value, after1);
    p.grad = g2.clone();
    optimizer->step();
    check_close(p.value, after2);
    CHECK(optimizer->step_count() == 2);
}

}  // namespace

TEST_CASE("SGD: p ← p − lr·g") {
    check_two_steps([](std::vector<Parameter*> ps) { return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1}); },
                    Tensor{0.49, -1.48, 1.97}, Tensor{0.53, -1.505, 1.965});
}

TEST_CASE("SGD with momentum starts the buffer at the first gradient") {
    check_two_steps(
        [](std::vector<Parameter*> ps) { return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.9}); },
        Tensor{0.49, -1.48, 1.97}, Tensor{0.521, -1.487, 1.938});
}

TEST_CASE("SGD dampening applies from the second step on (b₁ = g₁, as PyTorch)") {
    check_two_steps(
        [](std::vector<Parameter*> ps) {
            return std::make_unique<SGD>(ps, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
        },
        Tensor{0.49, -1.48, 1.97}, Tensor{0.517, -1.4845, 1.9385});
}

TEST_CASE("SGD with Nesterov momentum and weight decay") {
    check_two_steps(
        [](std::vector<Parameter*> ps) {
            return std::make_unique<SGD>(ps,
                                         SGDOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
        },
        Tensor{0.48005, -1.45915, 1.9392}, Tensor{0.54663290500000001, -1.486462615, 1.90009552});
}

TEST_CASE("Adam: bias-corrected moments, ε outside the square root") {
    check_two_steps(
        [](std::vector<Parameter*> ps) { return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.01}); },
        Tensor{0.4900000009999999, -1.4900000005, 1.9900000003333333},
        Tensor{0.49559503574851288, -1.4916273230448174, 1.9821667272150605});
}

TEST_CASE("Adam with weight decay adds λ·p to the gradient (an L2 penalty)") {
    check_two_steps(
        [](std::vector<Parameter*> ps) {
            return std::make_unique<Adam>(ps, AdamOptions{.lr = 0.01, .weight_decay = 0.1});
        },
        Tensor{0.49000000066666662, -1.4900000002857143, 1.9900000002},
        Tensor{0.49421122910693701, -1.4856264915118257, 1.9806840741327396});
}

TEST_CASE("AdamW decays the weights directly: p ← p·(1 − lr·λ), then Adam") {
    check_two_steps(
        [](std::vector<Parameter*> ps) {
            return std::make_unique<AdamW>(ps, AdamWOptions{.lr = 0.01, .weight_decay = 0.1});
        },
        Tensor{0.4895000009999999, -1.4885000005, 1.9880000003333333},
        Tensor{0.49460553574751288, -1.4886388230443174, 1.9781787272147272});
}

TEST_CASE("the vectorized Adam loop updates every element alike, body and tail") {
    // 37 copies of element 0 of the two-step test: each must end bit-identical, and at the expected value.
    Parameter p(Tensor::full(Shape{37}, 0.5));
    AdamW adamw({&p}, {.lr = 0.01, .weight_decay = 0.1});
    p.grad = Tensor::full(Shape{37}, 0.1);
    adamw.step();
    p.grad = Tensor::full(Shape{37}, -0.4);
    adamw.step();
    for (std::size_t i = 0; i < 37; ++i) CHECK(p.value[i] == p.value[0]);
    CHECK(std::abs(p.value[0] - 0.49460553574751288) <= 1e-14 * 0.4946);
}

TEST_CASE("optimizer state is named per parameter and restoring it resumes bit for bit") {
    Parameter a(p0.clone()), b(Tensor{{1.0, 2.0}});
    Adam original({&a, &b}, {.lr = 0.05});
    std::vector<std::string> names;
    for (const auto& [name, t] : original.state()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"adam.m.0", "adam.m.1", "adam.v.0", "adam.v.1"});
    CHECK(original.state()[1].second->shape() == Shape{1, 2});

    a.grad = g1.clone();
    b.grad = Tensor{{0.3, -0.1}};
    original.step();

    // A fresh optimizer given the saved values, state and step count continues exactly.
    Parameter a2(a.value.clone()), b2(b.value.clone());
    Adam resumed({&a2, &b2}, {.lr = 0.05});
    auto from = original.state();
    auto to = resumed.state();
    for (std::size_t i = 0; i < from.size(); ++i) *to[i].second = from[i].second->clone();
    resumed.set_step_count(original.step_count());

    a.grad = g2.clone();
    a2.grad = g2.clone();
    b.grad = Tensor{{-0.2, 0.7}};
    b2.grad = Tensor{{-0.2, 0.7}};
    original.step();
    resumed.step();
    CHECK(equal(a.value, a2.value));
    CHECK(equal(b.value, b2.value));

    Parameter c(p0.clone());
    CHECK(SGD({&c}).state().empty());
    CHECK(SGD({&c}, {.momentum = 0.5}).state()[0].first == "sgd.momentum.0");
    CHECK(AdamW({&c}).state()[1].first == "adamw.v.0");
}

TEST_CASE("learning rate, step count, zero_grad and name") {
    Parameter p(p0.clone());
    Adam adam({&p}, {.lr = 0.01});
    CHECK(adam.learning_rate() == 0.01);
    adam.set_learning_rate(0.5);
    CHECK(adam.learning_rate() == 0.5);
    CHECK(adam.step_count() == 0);
    adam.set_step_count(7);
    CHECK(adam.step_count() == 7);
    p.grad.fill(2.0);
    adam.zero_grad();
    CHECK(equal(p.grad, Tensor::zeros(Shape{3})));
    CHECK(adam.name() == "Adam(lr=0.5, betas=(0.9, 0.999), eps=1e-08, weight_decay=0)");
    CHECK(AdamW({&p}).name() == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)");
    CHECK(SGD({&p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true}).name() ==
          "SGD(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=true)");
    CHECK(adam.parameters() == std::vector<Parameter*>{&p});
}

TEST_CASE("a zero gradient leaves plain SGD's parameters exactly in place") {
    Parameter p(p0.clone());
    SGD sgd({&p}, {.lr = 0.1});
    sgd.step();
    CHECK(equal(p.value, p0));
}

TEST_CASE("bad hyperparameters are rejected with the optimizer and the value named") {
    Parameter p(p0.clone());
    const std::vector<Parameter*> ps{&p};
    CHECK_THROWS_WITH_AS(SGD(ps, {.lr = -0.1}), "SGD: the learning rate must be finite and ≥ 0, got -0.1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(SGD(ps, {.momentum = -0.5}), "SGD: momentum must be finite and ≥ 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(SGD(ps, {.nesterov = true}),
                         "SGD: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum 0 and dampening 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(SGD(ps, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                         doctest::Contains("requires momentum > 0 and dampening = 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Adam(ps, {.lr = NAN}), "Adam: the learning rate must be finite and ≥ 0, got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Adam(ps, {.beta1 = 1.0}), "Adam: beta1 must be in [0, 1), got 1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Adam(ps, {.beta2 = -0.1}), "Adam: beta2 must be in [0, 1), got -0.1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Adam(ps, {.eps = 0.0}), "Adam: eps must be finite and > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(AdamW(ps, {.weight_decay = -1}), "AdamW: weight_decay must be finite and ≥ 0, got -1",
                         std::invalid_argument);
    Adam adam(ps);
    CHECK_THROWS_WITH_AS(adam.set_learning_rate(-1), "Adam: the learning rate must be finite and ≥ 0, got -1",
                         std::invalid_argument);
}

TEST_CASE("bad parameter lists and mis-shaped gradients or state are rejected") {
    Parameter p(p0.clone()), q(Tensor{1.0});
    CHECK_THROWS_WITH_AS(Adam({}), "Adam: the parameter list is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Adam({&p, nullptr}), "Adam: parameter 1 is null", std::invalid_argument);
    CHECK_THROWS_WITH_AS(SGD({&p, &q, &p}), "SGD: parameter 0 appears again at position 2", std::invalid_argument);

    Adam adam({&p, &q});
    q.grad = Tensor{1.0, 2.0};
    CHECK_THROWS_WITH_AS(adam.step(), "Adam.step: parameter 1 has shape [1] but its gradient has shape [2]",
                         std::invalid_argument);
    CHECK(adam.step_count() == 0);  // nothing was applied
    q.grad = Tensor();
    CHECK_THROWS_WITH_AS(adam.step(), "Adam.step: parameter 1 (shape [1]) has no gradient", std::invalid_argument);
    q.zero_grad();
    *adam.state()[2].second = Tensor::zeros(Shape{4});  // adam.v.0, restored with the wrong shape
    CHECK_THROWS_WITH_AS(adam.step(), "Adam.step: parameter 0 has shape [3] but its second moment v has shape [4]",
                         std::invalid_argument);
    CHECK(equal(p.value, p0));
}
