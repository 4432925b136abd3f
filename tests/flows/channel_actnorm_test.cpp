// ChannelActNorm: the first training batch leaves every channel with mean 0 and variance 1 over its
// images and pixels; log-det H·W·Σ log_s by hand; conformance; errors.
#include "flows/channel_actnorm.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "flows/conformance.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

TEST_CASE("ChannelActNorm: data-dependent initialization per channel") {
    Rng rng(4);
    // Channel 0 around 3 with std 0.5, channel 1 around −2 with std 4.
    Tensor x = randn(Shape{50, 2 * 9}, rng);
    for (std::size_t n = 0; n < 50; ++n)
        for (std::size_t p = 0; p < 9; ++p) {
            x[n * 18 + p] = 3 + 0.5 * x[n * 18 + p];
            x[n * 18 + 9 + p] = -2 + 4 * x[n * 18 + 9 + p];
        }
    ChannelActNorm a({2, 3, 3});
    const Transformed z = a.inverse(Var(x));
    CHECK(a.initialized());
    for (std::size_t c = 0; c < 2; ++c) {
        double mean = 0, var = 0;
        for (std::size_t n = 0; n < 50; ++n)
            for (std::size_t p = 0; p < 9; ++p) mean += z.value.value()[n * 18 + c * 9 + p] / 450;
        for (std::size_t n = 0; n < 50; ++n)
            for (std::size_t p = 0; p < 9; ++p) var += std::pow(z.value.value()[n * 18 + c * 9 + p] - mean, 2) / 450;
        CHECK(std::abs(mean) <= 1e-12);
        CHECK(var == doctest::Approx(1).epsilon(1e-12));
    }
    // log|det ∂z/∂x| = −H·W·(log_s_0 + log_s_1) for every sample.
    const double want = -9 * (a.log_scale().value[0] + a.log_scale().value[1]);
    CHECK(z.log_abs_det_jacobian.value()[7] == doctest::Approx(want).epsilon(1e-14));
}

TEST_CASE("ChannelActNorm: the initialized flag is a module buffer, so checkpoints keep it") {
    ChannelActNorm a({2, 2, 2});
    REQUIRE(a.named_buffers().size() == 1);
    CHECK(a.named_buffers()[0].first == "initialized");
    CHECK(a.named_buffers()[0].second->item() == 0.0);
    a.set_initialized();
    CHECK(a.named_buffers()[0].second->item() == 1.0);
}

TEST_CASE("ChannelActNorm: conformance with random parameters") {
    Rng rng(5);
    ChannelActNorm a({2, 2, 2});
    a.loc().value = randn(Shape{2}, rng);
    a.log_scale().value = randn(Shape{2}, rng, 0.0, 0.5);
    a.set_initialized();
    CHECK_BIJECTOR(a, randn(Shape{8, 8}, rng), {.mc_samples = 5000});
}

TEST_CASE("ChannelActNorm: too few values to initialize") {
    ChannelActNorm a({1, 1, 1});
    CHECK_THROWS_WITH_AS(a.inverse(Var(Tensor::ones(Shape{1, 1}))), doctest::Contains("N·H·W = 1"),
                         std::invalid_argument);
}
