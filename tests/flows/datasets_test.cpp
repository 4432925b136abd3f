// The 2-D data sets: shapes, determinism per seed, the support and shape of each distribution, and
// Monte-Carlo checks of the entropies datasets.hpp states (−mean log p(x) over samples → H).
#include "flows/datasets.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

constexpr double pi = std::numbers::pi;

using tapeflow::testing::column_moments;

// −(1/n) Σ log p(x_i) and its standard error: a Monte-Carlo estimate of the entropy.
struct Estimate {
    double value, standard_error;
};

template <class LogDensity>
Estimate entropy_estimate(const Tensor& x, LogDensity log_p) {
    const std::size_t n = x.shape()[0];
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double l = -log_p(x.at({i, 0}), x.at({i, 1}));
        sum += l;
        sum_sq += l * l;
    }
    const double mean = sum / static_cast<double>(n);
    const double variance = sum_sq / static_cast<double>(n) - mean * mean;
    return {mean, std::sqrt(variance / static_cast<double>(n))};
}

// Distance from (x, y) to the half of the unit circle around (cx, cy) above (upper) or below its
// centre: the radial gap where the point lies over the arc, else the distance to the nearer end.
double distance_to_arc(double x, double y, double cx, double cy, bool upper) {
    const double dx = x - cx, dy = y - cy;
    if ((dy >= 0) == upper) return std::abs(std::hypot(dx, dy) - 1);
    return std::min(std::hypot(dx - 1, dy), std::hypot(dx + 1, dy));
}

// The two moons: the outer arc (cos t, sin t) and the inner arc (1 − cos t, 0.5 − sin t), t ∈ [0, π].
double distance_to_outer_moon(double x, double y) { return distance_to_arc(x, y, 0, 0, true); }
double distance_to_inner_moon(double x, double y) { return distance_to_arc(x, y, 1, 0.5, false); }

}  // namespace

TEST_CASE("every data set draws finite [n, 2] batches, the same ones for the same seed") {
    REQUIRE(dataset_names() == std::vector<std::string>{"moons", "8gaussians", "checkerboard", "rings", "pinwheel", "2spirals"});
    for (const std::string& name : dataset_names()) {
        CAPTURE(name);
        CHECK_FALSE(dataset(name).description.empty());
        Rng a(42), b(42), c(43);
        const Tensor x = sample_dataset(name, 257, a);
        CHECK(x.shape() == Shape{257, 2});
        CHECK(all_finite(x));
        CHECK(equal(x, sample_dataset(name, 257, b)));
        CHECK_FALSE(equal(x, sample_dataset(name, 257, c)));
        // The stream continues: the next batch differs from the first.
        CHECK_FALSE(equal(sample_dataset(name, 257, a), x));
        Rng d(42);
        CHECK(equal(dataset(name).sample(257, d), x));
        Rng e(1);
        CHECK(sample_dataset(name, 0, e).shape() == Shape{0, 2});
    }
}

TEST_CASE("an unknown data set name is an error listing the valid names") {
    Rng rng(0);
    CHECK_THROWS_WITH_AS(sample_dataset("moon", 10, rng), doctest::Contains("unknown data set 'moon'"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dataset_entropy("swissroll"),
                         doctest::Contains("moons, 8gaussians, checkerboard, rings, pinwheel, 2spirals"),
                         std::invalid_argument);
}

TEST_CASE("the known entropies") {
    CHECK(*dataset_entropy("checkerboard") == std::log(32.0));
    CHECK(std::abs(*dataset_entropy("8gaussians") - 2.832) <= 5e-4);  // docs/theory.md §7: H ≈ 2.832
    CHECK(dataset_entropy("moons").has_value());
    CHECK_FALSE(dataset_entropy("rings").has_value());
    CHECK_FALSE(dataset_entropy("pinwheel").has_value());
    CHECK_FALSE(dataset_entropy("2spirals").has_value());
}

TEST_CASE("moons: sklearn's two half circles, unscaled") {
    Rng rng(1);
    // Without noise every point lies on one of the arcs.
    const Tensor exact = sample_moons(2000, rng, 0.0);
    std::size_t outer = 0, off_the_arcs = 0;
    for (std::size_t i = 0; i < 2000; ++i) {
        const double x = exact.at({i, 0}), y = exact.at({i, 1});
        const bool on_outer = distance_to_outer_moon(x, y) <= 1e-12;
        const bool on_inner = distance_to_inner_moon(x, y) <= 1e-12;
        off_the_arcs += !on_outer && !on_inner;
        outer += on_outer;
    }
    CHECK(off_the_arcs == 0);
    CHECK(std::abs(static_cast<double>(outer) - 1000) <= 4 * std::sqrt(500.0));  // fair coin, 4 std
    // With the default noise 0.05 the distance to the nearer arc is |N(0, 0.05²)| to first order.
    const std::size_t n = 20000;
    const Tensor x = sample_moons(n, rng);
    double sum_sq = 0;
    std::size_t far = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double px = x.at({i, 0}), py = x.at({i, 1});
        const double d = std::min(distance_to_outer_moon(px, py), distance_to_inner_moon(px, py));
        far += d > 6 * 0.05;
        sum_sq += d * d;
    }
    CHECK(far == 0);
    CHECK(std::abs(std::sqrt(sum_sq / n) - 0.05) <= 0.002);
    // E[x] = ½ E[cos t] + ½ E[1 − cos t] = ½;  E[y] = ½ (2/π) + ½ (½ − 2/π) = ¼ (no centering).
    const Tensor mean = column_moments(x).mean;
    CHECK(std::abs(mean[0] - 0.5) <= 0.02);
    CHECK(std::abs(mean[1] - 0.25) <= 0.01);
    CHECK_THROWS_WITH_AS(sample_moons(3, rng, -0.1), doctest::Contains("sample_moons: noise"), std::invalid_argument);
}

TEST_CASE("moons: the entropy matches a Monte-Carlo estimate") {
    // p(x) = ½ avg_t φ(x − a(t)) + ½ avg_t φ(x − b(t)) over t ~ U[0, π], φ the N(0, 0.05² I) density;
    // the average over t by the midpoint rule (the arc step π/M is ~1/16 of the noise std).
    constexpr std::size_t M = 1000;
    constexpr double s = 0.05;
    std::vector<std::array<double, 4>> arcs(M);
    for (std::size_t m = 0; m < M; ++m) {
        const double t = pi * (static_cast<double>(m) + 0.5) / M;
        arcs[m] = {std::cos(t), std::sin(t), 1 - std::cos(t), 0.5 - std::sin(t)};
    }
    const auto log_p = [&](double x, double y) {
        double p = 0;
        for (const auto& [ax, ay, bx, by] : arcs)
            p += std::exp(-0.5 * ((x - ax) * (x - ax) + (y - ay) * (y - ay)) / (s * s)) +
                 std::exp(-0.5 * ((x - bx) * (x - bx) + (y - by) * (y - by)) / (s * s));
        return std::log(p / (2.0 * M * 2 * pi * s * s));
    };
    Rng rng(2);
    const Estimate h = entropy_estimate(sample_moons(5000, rng), log_p);
    CAPTURE(h.value);
    CAPTURE(h.standard_error);
    CHECK(std::abs(h.value - *dataset_entropy("moons")) <= 4 * h.standard_error);
    CHECK(h.standard_error <= 0.015);
}

TEST_CASE("8 gaussians: equally weighted components, and the mixture's entropy is 2.832") {
    const double s = 0.5 / std::sqrt(2.0);
    std::array<double, 8> cx{}, cy{};
    for (std::size_t k = 0; k < 8; ++k) {
        cx[k] = 4 * std::cos(static_cast<double>(k) * pi / 4) / std::sqrt(2.0);
        cy[k] = 4 * std::sin(static_cast<double>(k) * pi / 4) / std::sqrt(2.0);
    }
    const auto log_p = [&](double x, double y) {
        double p = 0;
        for (std::size_t k = 0; k < 8; ++k)
            p += std::exp(-0.5 * ((x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k])) / (s * s));
        return std::log(p / (8 * 2 * pi * s * s));
    };
    Rng rng(3);
    const std::size_t n = 40000;
    const Tensor x = sample_eight_gaussians(n, rng);
    const Estimate h = entropy_estimate(x, log_p);
    CAPTURE(h.value);
    CHECK(std::abs(h.value - 2.832) <= 0.02);
    CHECK(std::abs(h.value - *dataset_entropy("8gaussians")) <= 4 * h.standard_error);
    // Each component gets n/8 points (nearest centre), within 4 binomial std.
    std::array<std::size_t, 8> counts{};
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t nearest = 0;
        double best = 1e300;
        for (std::size_t k = 0; k < 8; ++k) {
            const double d = std::hypot(x.at({i, 0}) - cx[k], x.at({i, 1}) - cy[k]);
            if (d < best) best = d, nearest = k;
        }
        ++counts[nearest];
    }
    for (std::size_t k = 0; k < 8; ++k)
        CHECK(std::abs(static_cast<double>(counts[k]) - n / 8.0) <= 4 * std::sqrt(n * (1.0 / 8) * (7.0 / 8)));
}

TEST_CASE("checkerboard: uniform on the 8 dark squares, so every sample has density 1/32") {
    Rng rng(4);
    const std::size_t n = 32000;
    const Tensor x = sample_checkerboard(n, rng);
    std::array<std::size_t, 16> counts{};
    std::size_t outside = 0, on_light_squares = 0;
    double offset_x = 0, offset_y = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double px = x.at({i, 0}), py = x.at({i, 1});
        if (!(px >= -4 && px < 4 && py >= -4 && py < 4)) {
            ++outside;
            continue;
        }
        const auto col = static_cast<long>(std::floor(px / 2)), row = static_cast<long>(std::floor(py / 2));
        // Dark squares: the one at (−4, −4) and every second one from it.
        on_light_squares += (col + row) % 2 != 0;
        ++counts[static_cast<std::size_t>((row + 2) * 4 + (col + 2))];
        offset_x += (px - 2 * static_cast<double>(col)) / n;
        offset_y += (py - 2 * static_cast<double>(row)) / n;
    }
    CHECK(outside == 0);
    CHECK(on_light_squares == 0);
    // So every sample has density 1/32, and −mean log p = ln 32 = H exactly (a stray sample outside
    // would have density 0 and make the NLL of the true density infinite).
    for (long row = -2; row < 2; ++row)
        for (long col = -2; col < 2; ++col) {
            const std::size_t count = counts[static_cast<std::size_t>((row + 2) * 4 + (col + 2))];
            if ((row + col) % 2 != 0) continue;
            CAPTURE(row);
            CAPTURE(col);
            CHECK(std::abs(static_cast<double>(count) - n / 8.0) <= 4 * std::sqrt(n * (1.0 / 8) * (7.0 / 8)));
        }
    // Uniform within each square: the offset from its lower-left corner averages (1, 1) (std 2/√12/√n).
    CHECK(std::abs(offset_x - 1) <= 0.015);
    CHECK(std::abs(offset_y - 1) <= 0.015);
}

TEST_CASE("rings: four equally likely rings of radii 0.75, 1.5, 2.25, 3") {
    Rng rng(5);
    const std::size_t n = 20000;
    const Tensor x = sample_rings(n, rng);
    std::array<std::size_t, 4> counts{};
    std::size_t off_the_rings = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double r = std::hypot(x.at({i, 0}), x.at({i, 1}));
        const double ring = std::clamp(std::round(r / 0.75), 1.0, 4.0);
        off_the_rings += std::abs(r - 0.75 * ring) > 6 * 0.08;
        ++counts[static_cast<std::size_t>(ring) - 1];
    }
    CHECK(off_the_rings == 0);
    for (std::size_t k = 0; k < 4; ++k)
        CHECK(std::abs(static_cast<double>(counts[k]) - n / 4.0) <= 4 * std::sqrt(n * 0.25 * 0.75));
    const Tensor mean = column_moments(x).mean;
    CHECK(std::abs(mean[0]) <= 0.05);
    CHECK(std::abs(mean[1]) <= 0.05);
}

TEST_CASE("pinwheel: five arms, each bent by 0.25·e^r") {
    Rng rng(6);
    const std::size_t n = 20000;
    const Tensor x = sample_pinwheel(n, rng);
    // A point at polar (2ρ, θ) with ρ ≈ r lies on arm c when θ + 0.25·e^ρ ≈ −2πc/5 (mod 2π), up to
    // the tangential noise (≈ 0.1/ρ in angle).
    std::size_t on_an_arm = 0;
    double mean_radius = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double px = x.at({i, 0}), py = x.at({i, 1});
        const double rho = std::hypot(px, py) / 2;
        const double phase = (std::atan2(py, px) + 0.25 * std::exp(rho)) / (2 * pi / 5);
        on_an_arm += std::abs(phase - std::round(phase)) * (2 * pi / 5) <= 0.4;
        mean_radius += rho / n;
    }
    CHECK(static_cast<double>(on_an_arm) >= 0.99 * n);
    CHECK(std::abs(mean_radius - 1.0) <= 0.02);
}

TEST_CASE("2spirals: two mirrored spirals of 1.5 turns") {
    Rng rng(7);
    const std::size_t n = 20000;
    const Tensor x = sample_two_spirals(n, rng);
    // |point| ≤ (3π + 0.5·√2)/3 plus the noise (0.1 per coordinate, 6 std).
    const double bound = (3 * pi + 0.5 * std::sqrt(2.0)) / 3 + 6 * 0.1 * std::sqrt(2.0);
    std::size_t beyond = 0;
    for (std::size_t i = 0; i < n; ++i) beyond += std::hypot(x.at({i, 0}), x.at({i, 1})) > bound;
    CHECK(beyond == 0);
    // Mirror symmetry: the mean is 0.
    const Tensor mean = column_moments(x).mean;
    CHECK(std::abs(mean[0]) <= 0.06);
    CHECK(std::abs(mean[1]) <= 0.06);
    // The angle m = 3π√u ⇒ (m/3π)² is uniform on [0, 1]; ‖point‖·3 ≈ m within the jitter (≤ 0.5·√2)
    // and the noise, so the median of ‖point‖·3/(3π) sits near √½.
    std::vector<double> radius(n);
    for (std::size_t i = 0; i < n; ++i) radius[i] = std::hypot(x.at({i, 0}), x.at({i, 1})) * 3 / (3 * pi);
    std::nth_element(radius.begin(), radius.begin() + n / 2, radius.end());
    CHECK(std::abs(radius[n / 2] - std::sqrt(0.5)) <= 0.05);
}
