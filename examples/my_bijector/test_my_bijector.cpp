// Tests of SoftLeaky: the conformance kit (round trips, log-dets against autodiff and finite-difference
// Jacobians, gradients, density), a gradcheck of our own, values computed by hand, and the errors.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "flows/conformance.hpp"
#include "my_bijector.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using my_bijector::SoftLeaky;

namespace {

// Random points plus both tails and the corner, so every regime of the map is exercised.
Tensor test_points(std::size_t dim, std::uint64_t seed) {
    Rng rng(seed);
    Tensor z = randn(Shape{40, dim}, rng) * 2.0;
    const double special[] = {-30.0, -4.0, 0.0, 1e-9, 4.0, 30.0};
    for (std::size_t i = 0; i < 6; ++i)
        for (std::size_t d = 0; d < dim; ++d) z[(34 + i) * dim + d] = special[(i + d) % 6];
    return z;
}

}  // namespace

TEST_CASE("SoftLeaky passes the bijector conformance kit") {
    SUBCASE("identity") {
        SoftLeaky b(2);
        CHECK_BIJECTOR(b, test_points(2, 1));
    }
    SUBCASE("slopes of both signs, mild and steep") {
        SoftLeaky b(Tensor{0.4, -0.9});
        CHECK_BIJECTOR(b, test_points(2, 2));
        SoftLeaky steep(Tensor{2.0, -2.0, 0.1});  // c = ±0.964: slopes 1.96 and 0.036
        CHECK_BIJECTOR(steep, test_points(3, 3));
    }
}

TEST_CASE("SoftLeaky: gradcheck of the value and the log-det, both directions") {
    Rng rng(4);
    SoftLeaky b(Tensor{0.7, -0.3});
    const Tensor z = randn(Shape{5, 2}, rng) * 2.0;
    const GradcheckOptions options{.parameters = b.parameters()};
    auto forward = [&](const std::vector<Var>& in) {
        const auto t = b.forward(in[0]);
        return sum(t.value) + 0.5 * sum(t.log_abs_det_jacobian);
    };
    auto inverse = [&](const std::vector<Var>& in) {
        const auto t = b.inverse(in[0]);
        return sum(t.value) - 0.5 * sum(t.log_abs_det_jacobian);
    };
    const GradcheckResult f = gradcheck(forward, {z}, options);
    CHECK_MESSAGE(f.ok, f.report);
    const GradcheckResult i = gradcheck(inverse, {z}, options);
    CHECK_MESSAGE(i.ok, i.report);
}

TEST_CASE("SoftLeaky: values against the formulas evaluated by hand") {
    const double theta = 0.5, c = std::tanh(theta), z = 2.0;
    SoftLeaky b(Tensor{theta});
    const auto t = b.forward(Var(Tensor(Shape{1, 1}, {z})));
    const double x = z + c * (std::sqrt(5.0) - 1.0);
    CHECK(std::abs(t.value.value()[0] - x) <= 1e-15 * x);
    CHECK(std::abs(t.log_abs_det_jacobian.value()[0] - std::log(1.0 + c * z / std::sqrt(5.0))) <= 1e-15);

    // Far out the map is linear with slope 1 ± c: the leaky ReLU it smooths.
    const auto far = b.forward(Var(Tensor(Shape{2, 1}, {-1e6, 1e6})));
    CHECK(std::abs(far.log_abs_det_jacobian.value()[0] - std::log(1.0 - c)) <= 1e-12);
    CHECK(std::abs(far.log_abs_det_jacobian.value()[1] - std::log(1.0 + c)) <= 1e-12);
}

TEST_CASE("SoftLeaky: errors name the bijector and the problem") {
    SoftLeaky b(3);
    CHECK_THROWS_WITH_AS(b.forward(Var(Tensor::zeros(Shape{4, 2}))), doctest::Contains("SoftLeaky::forward"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(b.inverse(Var(Tensor::zeros(Shape{4}))), doctest::Contains("SoftLeaky::inverse"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(SoftLeaky(Tensor::zeros(Shape{2, 2})), doctest::Contains("theta must be a non-empty vector"),
                         std::invalid_argument);
}
