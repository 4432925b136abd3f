#include "flows/batchnorm.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Data [N, D] with per-dimension means 2, −1, 0, … and standard deviations 0.5, 2, 1, ….
Tensor data(std::size_t n, std::size_t d, Rng& rng) {
    Tensor x = randn(Shape{n, d}, rng);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) {
            const double m = j == 0 ? 2 : j == 1 ? -1 : 0, s = j == 0 ? 0.5 : j == 1 ? 2 : 1;
            x[i * d + j] = m + s * x[i * d + j];
        }
    return x;
}

// A layer that has seen a few training batches (running averages away from 0, 1) and has a
// non-trivial affine part.
void warm_up(BatchNorm& bn, Rng& rng) {
    NoGrad no_grad;
    for (int k = 0; k < 30; ++k) bn.inverse(Var(data(64, bn.dim(), rng)));
    bn.log_gamma()->value = randn(Shape{bn.dim()}, rng, 0.0, 0.3);
    bn.beta()->value = randn(Shape{bn.dim()}, rng, 0.0, 0.3);
}

}  // namespace

TEST_CASE("BatchNorm: parameters, buffers, option errors") {
    BatchNorm bn(3);
    CHECK(bn.name() == "BatchNorm(D = 3)");
    const auto named = bn.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "log_gamma");
    CHECK(named[1].first == "beta");
    CHECK(equal(bn.running_mean(), Tensor{0, 0, 0}));
    CHECK(equal(bn.running_var(), Tensor{1, 1, 1}));
    REQUIRE(bn.buffers().size() == 2);
    CHECK(bn.buffers()[1].first == "running_var");
    BatchNorm plain(2, {.affine = false});
    CHECK(plain.parameters().empty());
    CHECK(plain.log_gamma() == nullptr);
    CHECK(plain.name() == "BatchNorm(D = 2, affine=false)");
    CHECK_THROWS_WITH_AS(BatchNorm(0), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(BatchNorm(2, {.momentum = 1.5}), doctest::Contains("momentum must be in [0, 1], got 1.5"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(BatchNorm(2, {.eps = 0}), doctest::Contains("eps must be finite and > 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(bn.inverse(Var(Tensor{{1.0, 2.0, 3.0}})),
                         doctest::Contains("need at least 2 samples, got N = 1 (call eval()"), std::invalid_argument);
    bn.eval();
    CHECK_NOTHROW(bn.inverse(Var(Tensor{{1.0, 2.0, 3.0}})));  // running averages: any N
}

TEST_CASE("BatchNorm: training mode normalizes with the batch statistics; the log-det matches") {
    Rng rng(1);
    BatchNorm bn(3, {.eps = 1e-5});
    const Tensor x = data(400, 3, rng);
    const Transformed z = bn.inverse(Var(x));
    double expected_log_det = 0;
    for (std::size_t j = 0; j < 3; ++j) {
        double m = 0, v = 0, zm = 0, zv = 0;
        for (std::size_t i = 0; i < 400; ++i) m += x[i * 3 + j] / 400, zm += z.value.value()[i * 3 + j] / 400;
        for (std::size_t i = 0; i < 400; ++i)
            v += std::pow(x[i * 3 + j] - m, 2) / 400, zv += std::pow(z.value.value()[i * 3 + j] - zm, 2) / 400;
        CHECK(std::abs(zm) <= 1e-12);
        CHECK(std::abs(zv - v / (v + 1e-5)) <= 1e-12);  // unit variance up to the ε
        expected_log_det += -0.5 * std::log(v + 1e-5);
        // Running averages after one batch from (0, 1), momentum 0.1, unbiased variance.
        CHECK(std::abs(bn.running_mean()[j] - 0.1 * m) <= 1e-14);
        CHECK(std::abs(bn.running_var()[j] - (0.9 + 0.1 * v * 400 / 399)) <= 1e-13);
    }
    for (std::size_t i = 0; i < 400; ++i) CHECK(std::abs(z.log_abs_det_jacobian.value()[i] - expected_log_det) <= 1e-12);
}

TEST_CASE("BatchNorm: the training log-det is the per-sample Jacobian's with the statistics held fixed") {
    Rng rng(2);
    BatchNorm bn(3);
    warm_up(bn, rng);
    bn.train();
    const Tensor x = data(50, 3, rng);
    Tensor log_det;
    {
        NoGrad no_grad;
        log_det = bn.inverse(Var(x)).log_abs_det_jacobian.value();
    }
    // Held fixed, the statistics make the map elementwise affine. A layer in evaluation mode whose
    // running averages are this batch's statistics is exactly that map: the log|det| of its
    // Jacobian (by autodiff) is what the training-mode log-det must be.
    BatchNorm frozen(3, {.momentum = 0});
    frozen.log_gamma()->value = bn.log_gamma()->value.clone();
    frozen.beta()->value = bn.beta()->value.clone();
    for (std::size_t j = 0; j < 3; ++j) {
        double m = 0, v = 0;
        for (std::size_t i = 0; i < 50; ++i) m += x[i * 3 + j] / 50;
        for (std::size_t i = 0; i < 50; ++i) v += std::pow(x[i * 3 + j] - m, 2) / 50;
        frozen.running_mean()[j] = m;
        frozen.running_var()[j] = v;
    }
    frozen.eval();
    Tensor frozen_z;
    {
        NoGrad no_grad;
        frozen_z = frozen.inverse(Var(x)).value.value();
        CHECK(max_abs_diff(frozen_z, bn.inverse(Var(x)).value.value()) <= 1e-12);  // same map on this batch
    }
    const Tensor J = jacobian([&](const Var& v) { return frozen.inverse(v).value; }, narrow(x, 0, 0, 1).clone());
    CHECK(std::abs(slogdet(J).log_abs_det - log_det[0]) <= 1e-12);
}

TEST_CASE("BatchNorm: gradients flow through the batch statistics (as in the paper)") {
    Rng rng(3);
    BatchNorm bn(2);
    const Tensor x = data(5, 2, rng);
    // gradcheck of the whole training-mode map of a batch: every z_i depends on every x_k.
    const auto f = [&](const std::vector<Var>& in) {
        const Transformed t = bn.inverse(in[0]);
        return concat({flatten(t.value), t.log_abs_det_jacobian}, 0);
    };
    const GradcheckResult r = gradcheck(f, {x}, {.parameters = bn.parameters()});
    CHECK_MESSAGE(r.ok, r.report);
    // Σ_i z_i = N β whatever x is, so its gradient in x is exactly zero; with the statistics treated
    // as constants it would be exp(log γ)/σ̃ instead.
    Tape& tape = Tape::current();
    tape.clear();
    const Var xv = tape.variable(x);
    tape.backward(sum(bn.inverse(xv).value));
    for (const double g : xv.grad().span()) CHECK(std::abs(g) <= 1e-12);
    tape.clear();
}

TEST_CASE("BatchNorm: forward uses the running averages in both modes") {
    Rng rng(4);
    BatchNorm bn(3);
    warm_up(bn, rng);
    const Tensor z = randn(Shape{6, 3}, rng);
    bn.train();
    Tensor train_x, eval_x;
    {
        NoGrad no_grad;
        train_x = bn.forward(Var(z)).value.value();
        bn.eval();
        eval_x = bn.forward(Var(z)).value.value();
    }
    CHECK(equal(train_x, eval_x));
    // In evaluation mode forward and inverse are each other's inverse.
    NoGrad no_grad;
    CHECK(max_abs_diff(bn.inverse(Var(eval_x)).value.value(), z) <= 1e-13);
}

TEST_CASE("BatchNorm: conformance in evaluation mode, D = 2, 3, 6") {
    Rng rng(5);
    for (const std::size_t d : {2, 3, 6}) {
        CAPTURE(d);
        BatchNorm bn(d);
        warm_up(bn, rng);
        bn.eval();
        CHECK_BIJECTOR(bn, randn(Shape{16, d}, rng), {.mc_samples = 5000});
    }
}

TEST_CASE("BatchNorm: conformance in training mode, of the checks that apply") {
    // With batch statistics a sample's z depends on the rest of its batch, and forward (running
    // averages) is not the inverse of a training-mode inverse, so round trips, batch independence
    // and the density check (which evaluates a grid as one batch) do not apply; the log-dets, every
    // parameter's gradient, and both gradchecks (through the batch statistics) do.
    Rng rng(6);
    for (const std::size_t d : {2, 3, 6}) {
        CAPTURE(d);
        BatchNorm bn(d);
        warm_up(bn, rng);
        bn.train();
        CHECK_BIJECTOR(bn, data(16, d, rng),
                       {.round_trip = false, .inverse_log_det = false, .batch_independence = false, .density = false,
                        .gradcheck_points = 4});
    }
}

TEST_CASE("BatchNorm: without the affine part, in both modes") {
    Rng rng(7);
    BatchNorm bn(3, {.momentum = 0.5, .affine = false});
    {
        NoGrad no_grad;
        for (int k = 0; k < 10; ++k) bn.inverse(Var(data(32, 3, rng)));
    }
    const Tensor x = data(16, 3, rng);
    CHECK_BIJECTOR(bn, x, {.round_trip = false, .inverse_log_det = false, .batch_independence = false, .density = false,
                           .gradcheck_points = 4});
    bn.eval();
    CHECK_BIJECTOR(bn, randn(Shape{16, 3}, rng), {.mc_samples = 5000});
    // In evaluation mode: z = (x − running_mean)/sqrt(running_var + ε) exactly.
    NoGrad no_grad;
    const Tensor z = bn.inverse(Var(x)).value.value();
    for (std::size_t j = 0; j < 3; ++j) {
        const double expected = (x[j] - bn.running_mean()[j]) / std::sqrt(bn.running_var()[j] + 1e-5);
        CHECK(std::abs(z[j] - expected) <= 1e-15 * std::max(1.0, std::abs(expected)));
    }
}
