#include "flows/actnorm.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "flows/conformance.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Per-dimension mean and population variance of a batch [N, D].
void moments(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
    const std::size_t n = x.shape()[0], d = x.shape()[1];
    mean.assign(d, 0);
    var.assign(d, 0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) mean[j] += x[i * d + j] / static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) var[j] += std::pow(x[i * d + j] - mean[j], 2) / static_cast<double>(n);
}

// Data far from standardized: means 3, −1, 0.5 and standard deviations 0.1, 5, 1.
Tensor shifted_data(std::size_t n, Rng& rng) {
    Tensor x = randn(Shape{n, 3}, rng);
    const double m[] = {3, -1, 0.5}, s[] = {0.1, 5, 1};
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < 3; ++j) x[i * 3 + j] = m[j] + s[j] * x[i * 3 + j];
    return x;
}

}  // namespace

TEST_CASE("ActNorm: parameters, identity before initialization, errors") {
    ActNorm a(3);
    CHECK(a.dim() == 3);
    CHECK(a.name() == "ActNorm(D = 3)");
    const auto named = a.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "loc");
    CHECK(named[1].first == "log_scale");
    CHECK_FALSE(a.initialized());
    Rng rng(1);
    const Tensor z = randn(Shape{4, 3}, rng);
    const Transformed x = a.forward(Var(z));  // forward never initializes
    CHECK(equal(x.value.value(), z));
    CHECK(equal(x.log_abs_det_jacobian.value(), Tensor::zeros(Shape{4})));
    CHECK_FALSE(a.initialized());
    CHECK_THROWS_WITH_AS(ActNorm(0), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.inverse(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("at least 2 samples, got N = 1"),
                         std::invalid_argument);
    CHECK_FALSE(a.initialized());  // a failed initialization leaves the layer as it was
    CHECK(equal(a.loc().value, Tensor::zeros(Shape{3})));
    CHECK_THROWS_WITH_AS(a.inverse(Var(Tensor{{1.0, 2.0}, {3.0, 4.0}})), doctest::Contains("ActNorm::inverse: expects dimension D = 3"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.inverse(Var(Tensor{{1.0, 2.0, INFINITY}, {3.0, 4.0, 5.0}})),
                         doctest::Contains("non-finite value in dimension 2"), std::invalid_argument);
}

TEST_CASE("ActNorm: the first training batch comes out with zero mean and unit variance") {
    Rng rng(2);
    ActNorm a(3);
    const Tensor x = shifted_data(500, rng);
    const Transformed z = a.inverse(Var(x));
    CHECK(a.initialized());
    std::vector<double> mean, var;
    moments(z.value.value(), mean, var);
    for (std::size_t j = 0; j < 3; ++j) {
        CHECK(std::abs(mean[j]) <= 1e-12);
        CHECK(std::abs(var[j] - 1) <= 1e-12);
    }
    // log|det ∂z/∂x| = −Σ log σ_d for every sample.
    moments(x, mean, var);
    const double expected = -0.5 * (std::log(var[0]) + std::log(var[1]) + std::log(var[2]));
    for (std::size_t i = 0; i < 500; ++i) CHECK(std::abs(z.log_abs_det_jacobian.value()[i] - expected) <= 1e-12);

    // A second batch does not re-initialize: the parameters stay as set.
    const Tensor loc = a.loc().value.clone();
    a.inverse(Var(shifted_data(100, rng) * 7.0));
    CHECK(equal(a.loc().value, loc));
}

TEST_CASE("ActNorm: evaluation mode and forward never initialize; set_initialized and buffers") {
    Rng rng(3);
    ActNorm a(3);
    a.eval();
    const Tensor x = shifted_data(20, rng);
    CHECK(equal(a.inverse(Var(x)).value.value(), x));
    CHECK_FALSE(a.initialized());
    a.train();
    a.set_initialized();  // e.g. after loading a checkpoint
    CHECK(equal(a.inverse(Var(x)).value.value(), x));
    REQUIRE(a.buffers().size() == 1);
    CHECK(a.buffers()[0].first == "initialized");
    CHECK(a.buffers()[0].second->item() == 1.0);
    a.set_initialized(false);
    CHECK(a.buffers()[0].second->item() == 0.0);
}

TEST_CASE("ActNorm: a dimension constant over the batch is centred and keeps log_s = 0") {
    ActNorm a(2);
    a.initialize(Tensor{{1.0, 5.0}, {3.0, 5.0}, {2.0, 5.0}});
    CHECK(a.loc().value[1] == 5.0);
    CHECK(a.log_scale().value[1] == 0.0);
    CHECK(std::isfinite(a.log_scale().value[0]));
}

TEST_CASE("ActNorm: conformance after initialization, D = 2, 3, 6") {
    Rng rng(4);
    for (const std::size_t d : {2, 3, 6}) {
        CAPTURE(d);
        ActNorm a(d);
        a.initialize(randn(Shape{64, d}, rng, 1.0, 3.0));
        CHECK_BIJECTOR(a, randn(Shape{16, d}, rng), {.mc_samples = 5000});
        a.eval();
        CHECK_BIJECTOR(a, randn(Shape{16, d}, rng), {.mc_samples = 5000});
    }
}
