#include "tensor/random.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <numbers>
#include <stdexcept>
#include <vector>

using tapeflow::Rng;
using tapeflow::Shape;
using tapeflow::Tensor;

namespace {

struct Moments {
    double mean, variance;
};

Moments moments(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    return {mean, ss / static_cast<double>(v.size() - 1)};
}

constexpr std::size_t samples = 100'000;

}  // namespace

TEST_CASE("the stream for a seed is pinned, so results reproduce on every platform") {
    // xoshiro256** seeded by splitmix64, from the reference algorithms (Blackman & Vigna).
    Rng zero(0);
    CHECK(zero.next_u64() == 0x99ec5f36cb75f2b4ULL);
    CHECK(zero.next_u64() == 0xbf6e1f784956452aULL);
    CHECK(zero.next_u64() == 0x1a5f849d4933e6e0ULL);
    CHECK(zero.next_u64() == 0x6aa594f1262d2d2cULL);
    CHECK(Rng(42).next_u64() == 0x15780b2e0c2ec716ULL);
    Rng u(0);
    CHECK(u.uniform() == 0.6012629994179048);
    CHECK(u.uniform() == 0.7477740925472398);
}

TEST_CASE("the same seed gives identical streams, different seeds different ones") {
    Rng a(123), b(123), c(124);
    std::vector<double> from_a, from_b, from_c;
    for (int i = 0; i < 100; ++i) {
        from_a.push_back(i % 2 ? a.uniform() : a.normal());
        from_b.push_back(i % 2 ? b.uniform() : b.normal());
        from_c.push_back(i % 2 ? c.uniform() : c.normal());
    }
    CHECK(from_a == from_b);
    std::size_t same = 0;
    for (std::size_t i = 0; i < from_a.size(); ++i) same += from_a[i] == from_c[i];
    CHECK(same == 0);
    CHECK(Rng().next_u64() == Rng(0).next_u64());
}

TEST_CASE("uniform lies in [0, 1) on a 2⁻⁵³ grid with the moments of U(0, 1)") {
    Rng rng(1);
    std::vector<double> v(samples);
    for (double& x : v) {
        x = rng.uniform();
        REQUIRE(x >= 0);
        REQUIRE(x < 1);
        REQUIRE(std::ldexp(x, 53) == std::floor(std::ldexp(x, 53)));
    }
    const Moments m = moments(v);
    // Standard errors: √(1/12/n) for the mean, √((1/80 − 1/144)/n) for the variance.
    const double n = static_cast<double>(samples);
    CHECK(std::abs(m.mean - 0.5) <= 5 * std::sqrt(1.0 / 12 / n));
    CHECK(std::abs(m.variance - 1.0 / 12) <= 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
    for (int i = 0; i < 1000; ++i) {
        const double x = rng.uniform(-3, 5);
        REQUIRE(x >= -3);
        REQUIRE(x < 5);
    }
}

TEST_CASE("normal has mean 0, variance 1 and Gaussian tails within 5 standard errors") {
    Rng rng(2);
    std::vector<double> v(samples);
    std::size_t beyond = 0;
    for (double& x : v) {
        x = rng.normal();
        REQUIRE(std::isfinite(x));
        beyond += std::abs(x) > 1.959963984540054;
    }
    const Moments m = moments(v);
    const double n = static_cast<double>(samples);
    CHECK(std::abs(m.mean) <= 5 / std::sqrt(n));
    CHECK(std::abs(m.variance - 1) <= 5 * std::sqrt(2 / n));
    // P(|z| > 1.96) = 0.05: catches a non-Gaussian shape with the right first two moments.
    CHECK(std::abs(static_cast<double>(beyond) / n - 0.05) <= 5 * std::sqrt(0.05 * 0.95 / n));
}

TEST_CASE("normal is Box–Muller on two uniforms, using both values of each pair") {
    Rng rng(8);
    Rng copy = rng;
    const double u1 = copy.uniform(), u2 = copy.uniform();
    const double radius = std::sqrt(-2 * std::log(1 - u1));
    CHECK(std::abs(rng.normal() - radius * std::cos(2 * std::numbers::pi * u2)) <= 1e-15);
    CHECK(std::abs(rng.normal() - radius * std::sin(2 * std::numbers::pi * u2)) <= 1e-15);
    CHECK(rng.next_u64() == copy.next_u64());  // the pair consumed exactly two draws
}

TEST_CASE("below(n) stays in [0, n) with every value equally likely") {
    Rng rng(3);
    for (int i = 0; i < 100; ++i) REQUIRE(rng.below(1) == 0);
    for (std::uint64_t n : {std::uint64_t{3}, std::uint64_t{1000}, (std::uint64_t{1} << 40) + 3, UINT64_MAX})
        for (int i = 0; i < 1000; ++i) REQUIRE(rng.below(n) < n);

    std::array<std::size_t, 7> counts{};
    const std::size_t draws = 70'000;
    for (std::size_t i = 0; i < draws; ++i) ++counts[rng.below(7)];
    const double expected = static_cast<double>(draws) / 7;
    const double se = std::sqrt(static_cast<double>(draws) * (1.0 / 7) * (6.0 / 7));
    for (std::size_t count : counts) CHECK(std::abs(static_cast<double>(count) - expected) <= 5 * se);

    CHECK_THROWS_WITH_AS(rng.below(0), "Rng::below: the range [0, n) needs n > 0", std::invalid_argument);
}

TEST_CASE("below rejects the top partial copy of [0, n) instead of folding it onto the low values") {
    // n = 3·2⁶²: x mod n would hit [0, 2⁶²) twice as often as the rest (probability 1/2 instead of 1/3).
    const std::uint64_t n = 3 * (std::uint64_t{1} << 62);
    Rng rng(4);
    const std::size_t draws = 30'000;
    std::size_t low = 0;
    for (std::size_t i = 0; i < draws; ++i) low += rng.below(n) < (std::uint64_t{1} << 62);
    const double p = 1.0 / 3;
    CHECK(std::abs(static_cast<double>(low) / draws - p) <= 5 * std::sqrt(p * (1 - p) / draws));

    // For n = 2⁶³ + 1 exactly the raw draws ≥ n are rejected: below returns the first one < n.
    const std::uint64_t m = (std::uint64_t{1} << 63) + 1;
    Rng a(5);
    Rng raw = a;
    std::size_t rejected = 0;
    for (int i = 0; i < 50; ++i) {
        std::uint64_t x = raw.next_u64();
        while (x >= m) {
            x = raw.next_u64();
            ++rejected;
        }
        REQUIRE(a.below(m) == x);
    }
    CHECK(rejected > 10);  // about half of the draws, so the rejection path really ran
}

TEST_CASE("split derives a reproducible stream that differs from its parent") {
    Rng parent(6), twin(6);
    Rng child = parent.split();
    Rng twin_child = twin.split();
    std::size_t same = 0;
    for (int i = 0; i < 20; ++i) {
        const std::uint64_t c = child.next_u64();
        REQUIRE(c == twin_child.next_u64());
        same += c == parent.next_u64();
    }
    CHECK(same == 0);
}

TEST_CASE("random_permutation returns each of 0..n−1 once, every order equally likely") {
    Rng rng(7);
    CHECK(tapeflow::random_permutation(0, rng).empty());
    CHECK(tapeflow::random_permutation(1, rng) == std::vector<std::size_t>{0});
    auto p = tapeflow::random_permutation(1000, rng);
    CHECK(p.size() == 1000);
    const auto shuffled = p;
    std::sort(p.begin(), p.end());
    for (std::size_t i = 0; i < p.size(); ++i) REQUIRE(p[i] == i);
    CHECK(shuffled != p);

    Rng a(10), b(10);
    CHECK(tapeflow::random_permutation(50, a) == tapeflow::random_permutation(50, b));

    std::map<std::vector<std::size_t>, std::size_t> counts;
    const std::size_t draws = 60'000;
    for (std::size_t i = 0; i < draws; ++i) ++counts[tapeflow::random_permutation(3, rng)];
    CHECK(counts.size() == 6);
    const double se = std::sqrt(static_cast<double>(draws) * (1.0 / 6) * (5.0 / 6));
    for (const auto& [perm, count] : counts) CHECK(std::abs(static_cast<double>(count) - draws / 6.0) <= 5 * se);
}

TEST_CASE("randn and rand fill a tensor of any shape from the stream, in order") {
    Rng rng(11);
    CHECK(tapeflow::randn(Shape{2, 3}, rng).shape() == Shape{2, 3});
    CHECK(tapeflow::randn(Shape{}, rng).shape() == Shape{});
    CHECK(tapeflow::rand(Shape{0, 4}, rng).shape() == Shape{0, 4});

    Rng a(12), b(12);
    const Tensor t = tapeflow::randn(Shape{3}, a, 1.0, 2.0);
    for (std::size_t i = 0; i < 3; ++i) CHECK(t[i] == 1.0 + 2.0 * b.normal());
    const Tensor u = tapeflow::rand(Shape{3}, a, -1.0, 3.0);
    for (std::size_t i = 0; i < 3; ++i) CHECK(u[i] == b.uniform(-1.0, 3.0));

    const Tensor big = tapeflow::randn(Shape{samples}, rng, 3.0, 2.0);
    const Moments m = moments(big.to_vector());
    const double n = static_cast<double>(samples);
    CHECK(std::abs(m.mean - 3) <= 5 * 2 / std::sqrt(n));
    CHECK(std::abs(m.variance - 4) <= 5 * 4 * std::sqrt(2 / n));

    const Tensor r = tapeflow::rand(Shape{10'000}, rng, 2.0, 4.0);
    const auto span = r.span();
    const auto [lo, hi] = std::minmax_element(span.begin(), span.end());
    CHECK(*lo >= 2.0);
    CHECK(*lo < 2.01);
    CHECK(*hi < 4.0);
    CHECK(*hi > 3.99);
}
