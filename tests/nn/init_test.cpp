#include "nn/init.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

struct Moments {
    double mean = 0, std = 0, max_abs = 0;
};

Moments moments(const Tensor& t) {
    Moments m;
    for (const double v : t.span()) m.mean += v;
    m.mean /= static_cast<double>(t.numel());
    for (const double v : t.span()) {
        m.std += (v - m.mean) * (v - m.mean);
        m.max_abs = std::max(m.max_abs, std::abs(v));
    }
    m.std = std::sqrt(m.std / static_cast<double>(t.numel()));
    return m;
}

}  // namespace

TEST_CASE("kaiming_uniform with a = √5 is PyTorch's nn.Linear default, U(±1/√fan_in)") {
    CHECK(std::abs(kaiming_uniform_bound(64) - 0.125) <= 1e-16);
    CHECK(std::abs(kaiming_uniform_bound(3) - 1 / std::sqrt(3.0)) <= 2e-16);  // within an ulp or two
    // a = 0 is He's ReLU gain √2: b = √(6 / fan_in).
    CHECK(std::abs(kaiming_uniform_bound(6, 0.0) - 1.0) <= 1e-15);

    Rng rng(7);
    const Tensor w = kaiming_uniform(Shape{256, 300}, 256, rng);
    const Moments m = moments(w);
    CHECK(m.max_abs < 1.0 / 16);
    CHECK(m.max_abs > 0.999 / 16);                                 // the range is really used
    CHECK(std::abs(m.mean) < 1e-3);                                // σ of the mean ≈ 0.036/√76800
    CHECK(std::abs(m.std - 1.0 / 16 / std::sqrt(3.0)) < 0.01 * 0.036);  // U(±b) has σ = b/√3
}

TEST_CASE("xavier_uniform and xavier_normal have σ = gain·√(2 / (fan_in + fan_out))") {
    Rng rng(11);
    const double expected = std::sqrt(2.0 / (400 + 600));
    const Tensor u = xavier_uniform(Shape{400, 600}, 400, 600, rng);
    const Moments mu = moments(u);
    CHECK(std::abs(mu.std - expected) < 0.01 * expected);
    CHECK(mu.max_abs < std::sqrt(6.0 / 1000));
    CHECK(mu.max_abs > 0.999 * std::sqrt(6.0 / 1000));

    const Tensor n = xavier_normal(Shape{400, 600}, 400, 600, rng, 2.0);
    const Moments mn = moments(n);
    CHECK(std::abs(mn.std - 2 * expected) < 0.01 * 2 * expected);
    CHECK(std::abs(mn.mean) < 5 * 2 * expected / std::sqrt(240000.0));
}

TEST_CASE("normal(σ) and zeros") {
    Rng rng(3);
    const Moments m = moments(normal(Shape{500, 500}, 0.01, rng));
    CHECK(std::abs(m.std - 0.01) < 0.01 * 0.01);
    CHECK(equal(zeros(Shape{3, 2}), Tensor::zeros(Shape{3, 2})));
}

TEST_CASE("initialize dispatches on Init and is deterministic given the seed") {
    for (const Init init : {Init::kaiming_uniform(), Init::xavier_uniform(), Init::xavier_normal(0.5),
                            Init::normal(0.2), Init::zeros()}) {
        Rng a(42), b(42), c(43);
        const Tensor ta = initialize(init, Shape{8, 5}, 8, 5, a);
        const Tensor tb = initialize(init, Shape{8, 5}, 8, 5, b);
        const Tensor tc = initialize(init, Shape{8, 5}, 8, 5, c);
        CHECK(equal(ta, tb));  // bit-identical
        if (init.kind != Init::Kind::zeros) CHECK_FALSE(equal(ta, tc));
    }
    Rng a(5), b(5);
    CHECK(equal(initialize(Init::xavier_uniform(), Shape{4, 6}, 4, 6, a), xavier_uniform(Shape{4, 6}, 4, 6, b)));
}

TEST_CASE("Init::str names the scheme and its parameter") {
    CHECK(Init::kaiming_uniform().str() == "kaiming_uniform(a=2.23607)");
    CHECK(Init::xavier_normal(2).str() == "xavier_normal(gain=2)");
    CHECK(Init::normal(0.01).str() == "normal(std=0.01)");
    CHECK(Init::zeros().str() == "zeros");
}

TEST_CASE("initialization rejects a zero fan and a bad σ or gain") {
    Rng rng(0);
    CHECK_THROWS_WITH_AS(kaiming_uniform(Shape{0, 3}, 0, rng), doctest::Contains("kaiming_uniform: fan_in must be positive"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(xavier_uniform(Shape{3, 0}, 3, 0, rng), doctest::Contains("xavier_uniform: fan_out must be positive"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(normal(Shape{2}, -1.0, rng), doctest::Contains("normal: std must be finite and non-negative, got -1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(xavier_normal(Shape{2, 2}, 2, 2, rng, NAN), doctest::Contains("xavier_normal: gain must be finite"),
                         std::invalid_argument);
}
