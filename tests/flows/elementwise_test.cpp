#include "flows/elementwise.hpp"

#include <cmath>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

TEST_CASE("Affine: starts as the identity; parameters loc and log_scale") {
    Affine a(3);
    const auto named = a.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "loc");
    CHECK(named[1].first == "log_scale");
    const Tensor z{{1.0, -2.0, 0.5}, {0.0, 3.0, -1.0}};
    const Transformed f = a.forward(Var(z));
    CHECK(equal(f.value.value(), z));
    CHECK(equal(f.log_abs_det_jacobian.value(), Tensor{0.0, 0.0}));
    CHECK(a.name() == "Affine(D = 3)");
}

TEST_CASE("Affine: x = μ + σ ⊙ z, log|det| = Σ log σ, and the inverse") {
    Affine a(Tensor{1.0, -2.0}, Tensor{std::log(2.0), std::log(0.25)});
    const Tensor z{{1.0, 4.0}, {-3.0, 0.0}};
    const Transformed f = a.forward(Var(z));
    CHECK(max_abs_diff(f.value.value(), Tensor{{3.0, -1.0}, {-5.0, -2.0}}) <= 1e-15);
    const double ld = std::log(2.0) + std::log(0.25);
    REQUIRE(f.log_abs_det_jacobian.shape() == Shape{2});
    CHECK(std::abs(f.log_abs_det_jacobian.value()[0] - ld) <= 1e-15);
    CHECK(std::abs(f.log_abs_det_jacobian.value()[1] - ld) <= 1e-15);
    const Transformed back = a.inverse(f.value);
    CHECK(max_abs_diff(back.value.value(), z) <= 1e-15);
    CHECK(std::abs(back.log_abs_det_jacobian.value()[1] + ld) <= 1e-15);
}

TEST_CASE("Affine: gradcheck and the conformance kit in D = 1, 2, 3") {
    for (const std::size_t d : {1, 2, 3}) {
        Rng rng(d);
        Affine a(randn(Shape{d}, rng, 0.0, 0.5), randn(Shape{d}, rng, 0.0, 0.3));
        const Tensor z = randn(Shape{8, d}, rng);
        const auto g = gradcheck(
            [&a](const std::vector<Var>& v) {
                const Transformed t = a.inverse(v[0]);
                return concat({flatten(t.value), t.log_abs_det_jacobian}, 0);
            },
            {z}, {.parameters = a.parameters()});
        CHECK_MESSAGE(g.ok, g.report);
        CHECK_BIJECTOR(a, z);
    }
}

TEST_CASE("Affine: invalid arguments") {
    CHECK_THROWS_WITH_AS(Affine(0), doctest::Contains("non-empty"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Affine(Tensor{0.0, 1.0}, Tensor{0.0}), doctest::Contains("same shape"), std::invalid_argument);
    Affine a(2);
    CHECK_THROWS_WITH_AS(a.forward(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("Affine::forward"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(a.inverse(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("Affine::inverse"), std::invalid_argument);
}
