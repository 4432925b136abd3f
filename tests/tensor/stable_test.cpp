#include "tensor/stable.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace stable = tapeflow::stable;

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double quiet_nan = std::numeric_limits<double>::quiet_NaN();
const double ln2 = std::numbers::ln2;
}  // namespace

TEST_CASE("softplus = log(1 + eˣ) without overflow or lost tails") {
    CHECK(std::abs(stable::softplus(0) - ln2) <= 1.2e-16);
    CHECK(std::abs(stable::softplus(std::log(3.0)) - 2 * ln2) <= 4.5e-16);
    CHECK(stable::softplus(1000) == 1000);
    CHECK(stable::softplus(-1000) >= 0);
    CHECK(stable::softplus(-1000) < 1e-300);
    CHECK(std::abs(stable::softplus(-700) - std::exp(-700.0)) <= 1e-15 * std::exp(-700.0));
    CHECK(stable::softplus(inf) == inf);
    CHECK(stable::softplus(-inf) == 0);
    CHECK(std::isnan(stable::softplus(quiet_nan)));
    // softplus(x) − softplus(−x) = x exactly in exact arithmetic.
    for (double x : {-30.0, -2.5, 0.1, 3.0, 30.0}) CHECK(std::abs(stable::softplus(x) - stable::softplus(-x) - x) <= 1e-14);
}

TEST_CASE("sigmoid stays in [0, 1] and keeps tiny tails") {
    CHECK(stable::sigmoid(0) == 0.5);
    CHECK(std::abs(stable::sigmoid(std::log(3.0)) - 0.75) <= 1.2e-16);
    CHECK(stable::sigmoid(1000) == 1);
    CHECK(stable::sigmoid(-1000) == 0);
    CHECK(std::abs(stable::sigmoid(-700) - std::exp(-700.0)) <= 1e-15 * std::exp(-700.0));
    CHECK(stable::sigmoid(inf) == 1);
    CHECK(stable::sigmoid(-inf) == 0);
    for (double x : {-5.0, -0.5, 2.0}) CHECK(std::abs(stable::sigmoid(x) + stable::sigmoid(-x) - 1) <= 2.3e-16);
}

TEST_CASE("log_sigmoid = −softplus(−x), finite for every finite x") {
    CHECK(stable::log_sigmoid(-1000) == -1000);
    CHECK(stable::log_sigmoid(1000) == 0);
    CHECK(std::abs(stable::log_sigmoid(0) + ln2) <= 1.2e-16);
    CHECK(std::abs(stable::log_sigmoid(700) + std::exp(-700.0)) <= 1e-15 * std::exp(-700.0));
    CHECK(stable::log_sigmoid(-inf) == -inf);
    CHECK(stable::log_sigmoid(inf) == 0);
}

TEST_CASE("log_add_exp = log(eᵃ + eᵇ), including infinite arguments") {
    CHECK(std::abs(stable::log_add_exp(0, 0) - ln2) <= 1.2e-16);
    CHECK(std::abs(stable::log_add_exp(std::log(2.0), std::log(6.0)) - std::log(8.0)) <= 4.5e-16);
    CHECK(stable::log_add_exp(1, 2) == stable::log_add_exp(2, 1));
    CHECK(std::abs(stable::log_add_exp(1000, 1000) - (1000 + ln2)) <= 2.3e-13);
    CHECK(std::abs(stable::log_add_exp(-1000, -1000) - (-1000 + ln2)) <= 2.3e-13);
    CHECK(stable::log_add_exp(1000, 0) == 1000);
    CHECK(stable::log_add_exp(-inf, -inf) == -inf);
    CHECK(stable::log_add_exp(-inf, 3) == 3);
    CHECK(stable::log_add_exp(3, -inf) == 3);
    CHECK(stable::log_add_exp(inf, 3) == inf);
    CHECK(stable::log_add_exp(-inf, inf) == inf);
    CHECK(stable::log_add_exp(inf, inf) == inf);
    CHECK(std::isnan(stable::log_add_exp(quiet_nan, 0)));
    CHECK(std::isnan(stable::log_add_exp(0, quiet_nan)));
}

TEST_CASE("inverse_softplus undoes softplus from tiny to huge values, where log(expm1(y)) overflows") {
    for (double x : {-700.0, -30.0, -1.0, 0.0, 1e-8, 0.5, 3.0, 40.0, 700.0, 1000.0, 1e6}) {
        CAPTURE(x);
        const double y = stable::softplus(x);
        // softplus rounds its output near ln 2, so near x = 0 only an absolute accuracy is possible.
        CHECK(std::abs(stable::inverse_softplus(y) - x) <= 1e-12 * std::max(1.0, std::abs(x)));
    }
    CHECK(std::isinf(std::log(std::expm1(710.0))));  // the naive form, for the record
    CHECK(stable::inverse_softplus(710.0) == 710.0);
    CHECK(stable::inverse_softplus(1e-300) == doctest::Approx(std::log(1e-300)).epsilon(1e-15));
    CHECK(stable::inverse_softplus(0.0) == -inf);
    CHECK(std::isnan(stable::inverse_softplus(-1.0)));
    CHECK(std::isnan(stable::inverse_softplus(quiet_nan)));
}
