// The nn layer end to end: a training loop built from nn.hpp alone.
#include "nn/nn.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// Fits y = [sin(x₀)·x₁, x₀ − x₁²] with an MLP 2 → 16 → 16 → 2 and Adam for 100 steps on a fixed data
// set drawn from `seed`, with weights drawn from the same seed. Losses are kept as plain doubles.
std::vector<double> train(std::uint64_t seed) {
    Rng rng(seed);
    Rng data_rng = rng.split();
    const Tensor x = randn(Shape{64, 2}, data_rng);
    Tensor y(Shape{64, 2});
    for (std::size_t n = 0; n < 64; ++n) {
        y[2 * n] = std::sin(x[2 * n]) * x[2 * n + 1];
        y[2 * n + 1] = x[2 * n] - x[2 * n + 1] * x[2 * n + 1];
    }
    MLP model({2, 16, 16, 2}, rng, {.activation = Activation::silu});
    Adam adam(model.parameters(), {.lr = 1e-2});
    const CosineAnnealing schedule(1e-2, 100, 1e-3);
    Tape& tape = Tape::current();
    std::vector<double> losses;
    for (int step = 0; step < 100; ++step) {
        schedule.apply(adam);
        adam.zero_grad();
        const Var loss = mean(square(model(Var(x)) - Var(y)));
        tape.backward(loss);
        clip_grad_norm(model.parameters(), 10.0);
        adam.step();
        losses.push_back(loss.item());
        tape.clear();
    }
    return losses;
}

}  // namespace

TEST_CASE("same seed ⇒ bit-identical loss trajectory over 100 Adam steps; the loss goes down") {
    const std::vector<double> first = train(2024);
    const std::vector<double> second = train(2024);
    REQUIRE(first.size() == 100);
    CHECK(first == second);  // exact equality of every double
    CHECK(train(2025) != first);
    CHECK(first.back() < 0.5 * first.front());
    for (const double l : first) CHECK(std::isfinite(l));
}

TEST_CASE("a training step leaves nothing on the tape and its memory flat") {
    Rng rng(1);
    MLP model({2, 8, 1}, rng);
    SGD sgd(model.parameters(), {.lr = 0.01, .momentum = 0.9});
    Tape& tape = Tape::current();
    const Tensor x = randn(Shape{16, 2}, rng);
    std::size_t bytes_after_first = 0;
    for (int step = 0; step < 5; ++step) {
        sgd.zero_grad();
        const Var loss = mean(square(model(Var(x))));
        tape.backward(loss);
        sgd.step();
        tape.clear();
        CHECK(tape.size() == 0);
        if (step == 0) bytes_after_first = tape.bytes();
        CHECK(tape.bytes() == bytes_after_first);
    }
}
