// BatchNorm2d: training mode normalizes every channel over (n, i, j) to mean 0 and variance 1 (then γ, β),
// updates the running averages as torch does (unbiased variance); evaluation uses them; gradcheck
// through the batch statistics; errors.
#include "nn/batchnorm2d.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/parameter.hpp"
#include "autograd/reduce.hpp"
#include "tensor/parallel.hpp"
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

TEST_CASE("BatchNorm2d: second derivatives through the recorded backward (create_graph), both modes") {
    Rng rng(11);
    BatchNorm2d bn(2);
    bn.named_parameters()[0].second->value = randn(Shape{2}, rng);
    bn.named_parameters()[1].second->value = randn(Shape{2}, rng);
    const Tensor x = randn(Shape{2, 2, 2, 3}, rng);
    GradcheckOptions options;
    options.parameters = bn.parameters();
    // A non-linear function of the output, so that the second derivative in y is not zero.
    const auto f = [&](const std::vector<Var>& v) { return tanh(bn(v[0])); };
    const GradcheckResult training = gradgradcheck(f, {x}, options);
    INFO(training.report);
    CHECK(training.ok);
    bn.running_mean() = randn(Shape{2}, rng);
    bn.running_var() = rand(Shape{2}, rng, 0.5, 2.0);
    bn.eval();
    const GradcheckResult evaluation = gradgradcheck(f, {x}, options);
    INFO(evaluation.report);
    CHECK(evaluation.ok);
}

TEST_CASE("BatchNorm2d with the fused ReLU equals relu(BatchNorm2d(x)), values and gradients to both orders") {
    Rng rng(12);
    BatchNorm2d fused(3, {.relu = true}), plain(3);
    CHECK(fused.name() == "BatchNorm2d(3) + ReLU");
    const Tensor gamma = randn(Shape{3}, rng), beta = randn(Shape{3}, rng);
    for (BatchNorm2d* bn : {&fused, &plain}) {
        bn->named_parameters()[0].second->value = gamma.clone();
        bn->named_parameters()[1].second->value = beta.clone();
    }
    const Tensor x = randn(Shape{2, 3, 3, 2}, rng);
    const Tensor upstream = randn(x.shape(), rng);
    Parameter in_fused(x.clone()), in_plain(x.clone());
    const Var y_fused = fused(in_fused.var()), y_plain = relu(plain(in_plain.var()));
    // The same values with some outputs clipped to 0 (else the ReLU would not be tested).
    CHECK(max_abs_diff(y_fused.value(), y_plain.value()) < 1e-15);
    std::size_t zeros = 0;
    for (double v : y_fused.value().span()) zeros += v == 0;
    CHECK(zeros > 0);
    CHECK(zeros < x.numel());
    Tape& tape = Tape::current();
    tape.backward(sum(y_fused * Var(upstream)));
    tape.backward(sum(y_plain * Var(upstream)));
    CHECK(max_abs_diff(in_fused.grad, in_plain.grad) < 1e-13);
    CHECK(max_abs_diff(fused.parameters()[0]->grad, plain.parameters()[0]->grad) < 1e-13);
    CHECK(max_abs_diff(fused.parameters()[1]->grad, plain.parameters()[1]->grad) < 1e-13);
    tape.clear();
    GradcheckOptions options;
    options.parameters = fused.parameters();
    const auto f = [&](const std::vector<Var>& v) { return square(fused(v[0])); };
    CHECK_GRADCHECK(f, {x}, options);
    const GradcheckResult second = gradgradcheck(f, {x}, options);
    INFO(second.report);
    CHECK(second.ok);
}

TEST_CASE("BatchNorm2d: J·v by the tangent rule matches central differences, batch and running statistics, fused ReLU") {
    Rng rng(13);
    for (const bool relu : {false, true}) {
        INFO("relu: " << relu);
        BatchNorm2d bn(3, {.relu = relu});
        bn.named_parameters()[0].second->value = randn(Shape{3}, rng);
        bn.named_parameters()[1].second->value = randn(Shape{3}, rng);
        const Tensor x = randn(Shape{2, 3, 2, 3}, rng), v = randn(x.shape(), rng);
        const auto f = [&](const std::vector<Var>& in) { return bn(in[0]); };
        const GradcheckResult training = jvpcheck(f, {x}, {v});
        CHECK_MESSAGE(training.ok, training.report);
        bn.running_mean() = randn(Shape{3}, rng);
        bn.running_var() = rand(Shape{3}, rng, 0.5, 2.0);
        bn.eval();
        const GradcheckResult evaluation = jvpcheck(f, {x}, {v});
        CHECK_MESSAGE(evaluation.ok, evaluation.report);
    }
}

TEST_CASE("BatchNorm2d gives the same bits with one thread or two (the channels split in halves)") {
    Rng rng(13);
    const Tensor x = randn(Shape{4, 4, 64, 32}, rng, 1.0, 2.0);  // 32,768 values: large enough to split
    const Tensor upstream = randn(x.shape(), rng);
    const int before = num_threads();
    std::vector<Tensor> outputs, grads;
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        BatchNorm2d bn(4, {.relu = true});
        Parameter in(x.clone());
        const Var y = bn(in.var());
        Tape::current().backward(sum(y * Var(upstream)));
        outputs.push_back(y.value());
        grads.push_back(in.grad);
        grads.push_back(bn.parameters()[0]->grad);
        Tape::current().clear();
    }
    set_num_threads(before);
    CHECK(equal(outputs[0], outputs[1]));
    CHECK(equal(grads[0], grads[2]));
    CHECK(equal(grads[1], grads[3]));
}

TEST_CASE("BatchNorm2d: the one-pass statistics keep a large offset from cancelling the variance") {
    // Channel values 1e6 + {0, 1, 2, 3}: E[x²] − E[x]² in doubles would lose every digit of the variance 1.25.
    const Tensor x(Shape{1, 1, 2, 2}, {1e6 + 1, 1e6, 1e6 + 3, 1e6 + 2});
    BatchNorm2d bn(1, {.momentum = 1, .eps = 1e-12});
    NoGrad no_grad;
    (void)bn(Var(x));
    CHECK(bn.running_mean()[0] == doctest::Approx(1e6 + 1.5).epsilon(1e-15));
    CHECK(bn.running_var()[0] == doctest::Approx(1.25 * 4 / 3).epsilon(1e-12));
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
