#include "nn/schedule.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <numbers>

using namespace tapeflow;
using namespace tapeflow::nn;

TEST_CASE("ConstantSchedule") {
    const ConstantSchedule s(3e-4);
    CHECK(s.at(0) == 3e-4);
    CHECK(s.at(123456) == 3e-4);
    CHECK(s.name() == "ConstantSchedule(lr=0.0003)");
}

TEST_CASE("StepDecay multiplies by γ every k steps") {
    const StepDecay s(0.1, 10, 0.5);
    CHECK(s.at(0) == 0.1);
    CHECK(s.at(9) == 0.1);
    CHECK(s.at(10) == 0.05);
    CHECK(s.at(19) == 0.05);
    CHECK(s.at(25) == 0.025);
    CHECK(std::abs(StepDecay(1.0, 3, 0.1).at(7) - 0.01) <= 1e-17);
    CHECK(s.name() == "StepDecay(lr=0.1, step_size=10, gamma=0.5)");
}

TEST_CASE("CosineAnnealing goes from lr to η_min over T steps and stays there") {
    const CosineAnnealing s(1.0, 100, 0.1);
    CHECK(s.at(0) == 1.0);
    CHECK(std::abs(s.at(50) - 0.55) <= 1e-15);
    CHECK(std::abs(s.at(25) - (0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2)) <= 1e-15);
    CHECK(std::abs(s.at(75) - (0.1 + 0.9 * (1 - std::cos(std::numbers::pi / 4)) / 2)) <= 1e-15);
    CHECK(s.at(100) == 0.1);
    CHECK(s.at(1000) == 0.1);
    CHECK(CosineAnnealing(2e-3, 10).at(10) == 0.0);
    CHECK(s.name() == "CosineAnnealing(lr=1, T=100, eta_min=0.1)");
}

TEST_CASE("LinearWarmup ramps the wrapped schedule up over the first steps") {
    const LinearWarmup s(ConstantSchedule(1e-3), 10);
    CHECK(s.at(0) == 0.0);
    CHECK(std::abs(s.at(5) - 5e-4) <= 1e-18);
    CHECK(std::abs(s.at(9) - 9e-4) <= 1e-18);
    CHECK(s.at(10) == 1e-3);
    CHECK(s.at(500) == 1e-3);

    const LinearWarmup from_quarter(ConstantSchedule(1.0), 4, 0.25);
    CHECK(from_quarter.at(0) == 0.25);
    CHECK(from_quarter.at(2) == 0.625);
    CHECK(from_quarter.at(4) == 1.0);

    // Wrapping is multiplicative and unshifted: after the warm-up the cosine is exactly itself.
    const CosineAnnealing cosine(1e-3, 1000);
    const LinearWarmup warm_cosine(cosine, 100);
    CHECK(std::abs(warm_cosine.at(50) - 0.5 * cosine.at(50)) <= 1e-18);
    CHECK(warm_cosine.at(100) == cosine.at(100));
    CHECK(warm_cosine.at(700) == cosine.at(700));
    CHECK(warm_cosine.name() == "LinearWarmup(CosineAnnealing(lr=0.001, T=1000, eta_min=0), warmup_steps=100, start_factor=0)");
}

TEST_CASE("LinearCooldown lets the last c of T updates fall linearly") {
    // Tutorial 07's rule: lr·(T − t)/c once fewer than c updates are left.
    const LinearCooldown s(ConstantSchedule(1e-3), 10, 4);
    CHECK(s.at(0) == 1e-3);
    CHECK(s.at(6) == 1e-3);  // 4 updates left: the factor is still 1
    CHECK(std::abs(s.at(7) - 0.75e-3) <= 1e-18);
    CHECK(std::abs(s.at(9) - 0.25e-3) <= 1e-18);
    CHECK(s.at(10) == 0.0);
    CHECK(s.at(1000) == 0.0);
    // Warm-up, cosine and cool-down compose.
    const LinearCooldown all(LinearWarmup(CosineAnnealing(1.0, 100), 10), 100, 20);
    CHECK(all.at(0) == 0.0);
    CHECK(all.at(50) == CosineAnnealing(1.0, 100).at(50));
    CHECK(std::abs(all.at(90) - CosineAnnealing(1.0, 100).at(90) * 0.5) <= 1e-15);
    CHECK(s.name() == "LinearCooldown(ConstantSchedule(lr=0.001), total_steps=10, cooldown_steps=4)");
    CHECK_THROWS_WITH_AS(LinearCooldown(ConstantSchedule(0.1), 10, 0),
                         "LinearCooldown: cooldown_steps must be in [1, total_steps = 10], got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(LinearCooldown(ConstantSchedule(0.1), 10, 11),
                         "LinearCooldown: cooldown_steps must be in [1, total_steps = 10], got 11", std::invalid_argument);
    CHECK_THROWS_WITH_AS(LinearCooldown(std::shared_ptr<const Schedule>(), 5, 1),
                         "LinearCooldown: the wrapped schedule is null", std::invalid_argument);
}

TEST_CASE("apply sets the optimizer's rate for its next step") {
    Parameter p(Tensor{1.0});
    SGD sgd({&p}, {.lr = 0.7});
    const StepDecay s(0.1, 2, 0.5);
    s.apply(sgd);
    CHECK(sgd.learning_rate() == 0.1);
    sgd.set_step_count(5);
    s.apply(sgd);
    CHECK(sgd.learning_rate() == 0.025);
    // The rate applied is the one used: one step moves p by exactly lr·g.
    p.grad = Tensor{1.0};
    sgd.step();
    CHECK(p.value[0] == 1.0 - 0.025);
}

TEST_CASE("schedules reject invalid settings") {
    CHECK_THROWS_WITH_AS(ConstantSchedule(-1.0), "ConstantSchedule: lr must be finite and ≥ 0, got -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(StepDecay(0.1, 0, 0.5), "StepDecay: step_size must be > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(StepDecay(0.1, 5, 0.0), "StepDecay: gamma must be finite and > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(CosineAnnealing(0.1, 0), "CosineAnnealing: T must be > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(CosineAnnealing(0.1, 10, -1e-3), "CosineAnnealing: eta_min must be finite and ≥ 0, got -0.001",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(LinearWarmup(ConstantSchedule(0.1), 0), "LinearWarmup: warmup_steps must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(LinearWarmup(ConstantSchedule(0.1), 5, 1.5), "LinearWarmup: start_factor must be in [0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(LinearWarmup(std::shared_ptr<const Schedule>(), 5), "LinearWarmup: the wrapped schedule is null",
                         std::invalid_argument);
}
