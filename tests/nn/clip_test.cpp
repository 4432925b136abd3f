#include "nn/clip.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// A [1, 1] tensor ({{v}} would be ambiguous between a vector and a matrix).
Tensor cell(double v) { return Tensor::full(Shape{1, 1}, v); }

// Gradients [3, 4] and [[12]]: total norm √(9 + 16 + 144) = 13 exactly.
struct Fixture {
    Parameter a{Tensor{0.0, 0.0}};
    Parameter b{cell(0.0)};
    std::vector<Parameter*> params{&a, &b};
    Fixture() {
        a.grad = Tensor{3.0, 4.0};
        b.grad = cell(12.0);
    }
};

}  // namespace

TEST_CASE("clip_grad_norm returns the norm before clipping and scales by max_norm / (norm + 1e-6)") {
    Fixture f;
    CHECK(clip_grad_norm(f.params, 6.5) == 13.0);
    const double c = 6.5 / (13.0 + 1e-6);
    CHECK(equal(f.a.grad, Tensor{3.0 * c, 4.0 * c}));
    CHECK(equal(f.b.grad, cell(12.0 * c)));
    CHECK(std::abs(grad_norm(f.params) - 6.5) <= 1e-6);
}

TEST_CASE("clip_grad_norm leaves the gradients bit for bit below max_norm") {
    Fixture f;
    CHECK(clip_grad_norm(f.params, 20.0) == 13.0);
    CHECK(equal(f.a.grad, Tensor{3.0, 4.0}));
    CHECK(equal(f.b.grad, cell(12.0)));
    CHECK(clip_grad_norm(f.params, INFINITY) == 13.0);
    CHECK(equal(f.a.grad, Tensor{3.0, 4.0}));
}

TEST_CASE("clip_grad_norm with a non-finite norm returns it and leaves the gradients, or throws on request") {
    Fixture f;
    f.a.grad[1] = NAN;
    CHECK(std::isnan(clip_grad_norm(f.params, 1.0)));
    CHECK(f.a.grad[0] == 3.0);
    CHECK(f.b.grad[0] == 12.0);
    f.a.grad[1] = INFINITY;
    CHECK(clip_grad_norm(f.params, 1.0) == INFINITY);
    CHECK(f.b.grad[0] == 12.0);
    CHECK_THROWS_WITH_AS(clip_grad_norm(f.params, 1.0, {.error_if_nonfinite = true}),
                         "clip_grad_norm: the total gradient norm is inf; a gradient holds NaN or inf", std::runtime_error);
}

TEST_CASE("the norm of huge but finite gradients does not overflow") {
    Fixture f;
    f.a.grad = Tensor{3e200, 4e200};
    f.b.grad = cell(0.0);
    CHECK(std::abs(grad_norm(f.params) - 5e200) <= 1e-15 * 5e200);
    CHECK(std::abs(clip_grad_norm(f.params, 1.0) - 5e200) <= 1e-15 * 5e200);
    CHECK(std::abs(f.a.grad[0] - 0.6) <= 1e-15);
}

TEST_CASE("clip_grad_value clamps every element") {
    Fixture f;
    clip_grad_value(f.params, 3.5);
    CHECK(equal(f.a.grad, Tensor{3.0, 3.5}));
    CHECK(equal(f.b.grad, cell(3.5)));
}

TEST_CASE("clipping rejects a non-positive bound and missing gradients") {
    Fixture f;
    CHECK_THROWS_WITH_AS(clip_grad_norm(f.params, 0.0), "clip_grad_norm: max_norm must be > 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(clip_grad_norm(f.params, NAN), "clip_grad_norm: max_norm must be > 0, got nan", std::invalid_argument);
    CHECK_THROWS_WITH_AS(clip_grad_value(f.params, -1), "clip_grad_value: clip_value must be ≥ 0, got -1",
                         std::invalid_argument);
    f.b.grad = Tensor{1.0, 2.0};
    CHECK_THROWS_WITH_AS(clip_grad_norm(f.params, 1.0), "clip_grad_norm: parameter 1 (shape [1, 1]) has no gradient of its shape",
                         std::invalid_argument);
}
