// The Rezende & Mohamed energies: values against a scalar transcription of docs/theory.md §7, finiteness
// far from the modes, gradients against finite differences, the lookup by name, and log Z over the
// box against closed forms and the reference values.
#include "flows/targets.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

constexpr double pi = std::numbers::pi;

// docs/theory.md §7 transcribed literally, with the naive −log(exp + exp): right near the modes,
// where the test points below lie.
double bump(double x, double s) { return std::exp(-0.5 * (x / s) * (x / s)); }
double w1(double z1) { return std::sin(2 * pi * z1 / 4); }
double w2(double z1) { return 3 * bump(z1 - 1, 0.6); }
double w3(double z1) { return 3 / (1 + std::exp(-(z1 - 1) / 0.3)); }
double reference_u1(double z1, double z2) {
    const double r = std::sqrt(z1 * z1 + z2 * z2);
    return 0.5 * std::pow((r - 2) / 0.4, 2) - std::log(bump(z1 - 2, 0.6) + bump(z1 + 2, 0.6));
}
double reference_u2(double z1, double z2) { return 0.5 * std::pow((z2 - w1(z1)) / 0.4, 2); }
double reference_u3(double z1, double z2) {
    return -std::log(bump(z2 - w1(z1), 0.35) + bump(z2 - w1(z1) + w2(z1), 0.35));
}
double reference_u4(double z1, double z2) {
    return -std::log(bump(z2 - w1(z1), 0.4) + bump(z2 - w1(z1) + w3(z1), 0.35));
}

using Reference = double (*)(double, double);
const std::vector<Reference> references{reference_u1, reference_u2, reference_u3, reference_u4};

const Tensor points{{0.3, -1.2}, {1.9, 0.4}, {-2.1, -0.2}, {1.0, -1.5}, {-0.7, 0.9}, {2.5, -0.8}, {0.05, 1.95}};

}  // namespace

TEST_CASE("U1-U4 match docs/theory.md §7's formulas near the modes") {
    for (std::size_t k = 0; k < 4; ++k) {
        const Target& t = targets()[k];
        CAPTURE(t.name);
        const Tensor u = energy_values(t.energy, points);
        REQUIRE(u.shape() == Shape{points.shape()[0]});
        for (std::size_t i = 0; i < points.shape()[0]; ++i) {
            const double expected = references[k](points.at({i, 0}), points.at({i, 1}));
            CAPTURE(i);
            CHECK(std::abs(u[i] - expected) <= 1e-12 * (1 + std::abs(expected)));
        }
    }
}

TEST_CASE("the energies and their gradients stay finite far from the modes") {
    // Both exponents of −log(eᵃ + eᵇ) underflow here; the naive form gives +inf.
    const Tensor far{{50.0, 50.0}, {-50.0, 3.0}, {3.0, -40.0}, {-300.0, 200.0}};
    CHECK(std::isinf(reference_u1(50, 50)));
    CHECK(std::isinf(reference_u1(-50, 3)));
    CHECK(std::isinf(reference_u3(3, -40)));
    CHECK(std::isinf(reference_u4(3, -40)));
    for (const Target& t : targets()) {
        CAPTURE(t.name);
        Tape tape;
        TapeScope scope(tape);
        const Var z = tape.variable(far.clone());
        const Var u = t.energy(z);
        CHECK(all_finite(u.value()));
        tape.backward(sum(u));
        CHECK(all_finite(z.grad()));
    }
    // Far out along z1 U1's lobe term is −log e^{−½((z1 − 2)/0.6)²}: the log-add-exp must return
    // the larger exponent exactly, not 0 or −inf.
    const double z1 = 50;
    const double expected = 0.5 * std::pow((std::hypot(z1, 0.0) - 2) / 0.4, 2) + 0.5 * std::pow((z1 - 2) / 0.6, 2) -
                            std::log1p(std::exp(-0.5 * (std::pow((z1 + 2) / 0.6, 2) - std::pow((z1 - 2) / 0.6, 2))));
    CHECK(std::abs(energy_values(U1, Tensor{{z1, 0.0}})[0] - expected) <= 1e-12 * expected);
}

TEST_CASE("the gradients of U1-U4 agree with finite differences") {
    Rng rng(7);
    // Random points over the box, kept away from U1's cone point at z = 0.
    Tensor z = rand(Shape{16, 2}, rng, -3.5, 3.5);
    for (std::size_t i = 0; i < 16; ++i)
        if (std::hypot(z.at({i, 0}), z.at({i, 1})) < 0.3) z.at({i, 0}) += 1.0;
    for (const Target& t : targets()) {
        CAPTURE(t.name);
        CHECK_GRADCHECK([&](const std::vector<Var>& in) { return t.energy(in[0]); }, {z});
    }
    // And where the two exponents of the log-add-exp are far apart (one share ≈ 1, the other ≈ 0).
    const Tensor far{{3.7, 0.1}, {-3.9, 2.0}, {1.0, -3.9}};
    for (const Target& t : targets()) {
        CAPTURE(t.name);
        CHECK_GRADCHECK([&](const std::vector<Var>& in) { return t.energy(in[0]); }, {far});
    }
}

TEST_CASE("U1's gradient at the cone point z = 0 is the subgradient 0") {
    Tape tape;
    TapeScope scope(tape);
    const Var z = tape.variable(Tensor{{0.0, 0.0}, {1.0, 0.0}});
    tape.backward(sum(U1(z)));
    const Tensor g = z.grad();
    CHECK(g.at({0, 0}) == 0.0);
    CHECK(g.at({0, 1}) == 0.0);
    // Next to it, the ring's pull (r − 2)/0.16 along z/‖z‖, plus the lobes' term.
    const double lobes = ((1 - 2) / 0.36 * bump(1 - 2, 0.6) + (1 + 2) / 0.36 * bump(1 + 2, 0.6)) /
                         (bump(1 - 2, 0.6) + bump(1 + 2, 0.6));
    CHECK(std::abs(g.at({1, 0}) - ((1 - 2) / 0.16 + lobes)) <= 1e-12);
    CHECK(g.at({1, 1}) == 0.0);
}

TEST_CASE("the energies reject batches that are not [N, 2]") {
    CHECK_THROWS_WITH_AS(U1(Var(Tensor::zeros(Shape{4, 3}))), doctest::Contains("U1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(U2(Var(Tensor::zeros(Shape{4, 3}))), doctest::Contains("[4, 3]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(U3(Var(Tensor::zeros(Shape{2}))), doctest::Contains("U3"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(U4(Var(Tensor::zeros(Shape{0, 2}))), doctest::Contains("U4"), std::invalid_argument);
}

TEST_CASE("targets are found by name, and an unknown name lists the valid ones") {
    CHECK(target_names() == std::vector<std::string>{"u1", "u2", "u3", "u4"});
    CHECK(target("u3").name == "u3");
    CHECK_FALSE(target("u2").description.empty());
    CHECK(target("u1").normalizable_on_plane);
    CHECK_FALSE(target("u4").normalizable_on_plane);
    const Tensor z{{0.4, -0.3}};
    CHECK(energy_values(target("u4").energy, z)[0] == energy_values(U4, z)[0]);
    CHECK_THROWS_WITH_AS(target("u5"), doctest::Contains("unknown target 'u5'"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(target("U9"), doctest::Contains("u1, u2, u3, u4"), std::invalid_argument);
}

TEST_CASE("energy_values records nothing and checks the energy's output shape") {
    Tape tape;
    TapeScope scope(tape);
    const Var z = tape.variable(points.clone());
    const std::size_t before = tape.size();
    const Tensor u = energy_values(U3, points);
    CHECK(tape.size() == before);
    CHECK(equal(u, U3(z).value()));
    const Energy wrong = [](const Var& x) { return x; };
    CHECK_THROWS_WITH_AS(energy_values(wrong, points), doctest::Contains("must map a batch [N, D] to [N]"),
                         std::invalid_argument);
}

TEST_CASE("box_grid lists cell centres row by row from the bottom") {
    const Tensor g = box_grid(1.0, 2);
    CHECK(equal(g, Tensor{{-0.5, -0.5}, {0.5, -0.5}, {-0.5, 0.5}, {0.5, 0.5}}));
    CHECK(box_grid(4.0, 5).shape() == Shape{25, 2});
    CHECK_THROWS_WITH_AS(box_grid(0.0, 3), doctest::Contains("box_grid: the box half-width must be positive"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(box_grid(std::numeric_limits<double>::infinity(), 3), doctest::Contains("finite"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(box_grid(1.0, 0), doctest::Contains("n = 0"), std::invalid_argument);
}

TEST_CASE("log_partition_box is exact on closed forms") {
    // U = 0: Z is the area (2·box)².
    const Energy zero = [](const Var& z) { return Var(Tensor::zeros(Shape{z.shape()[0]})); };
    CHECK(std::abs(log_partition_box(zero, 3.0, 7) - std::log(36.0)) <= 1e-13);
    // U = ½‖z‖²: Z = 2π once the box holds all the mass.
    const Energy gaussian = [](const Var& z) { return 0.5 * sum(square(z), 1); };
    CHECK(std::abs(log_partition_box(gaussian, 12.0, 600) - std::log(2 * pi)) <= 1e-12);
    // U2 is a Gaussian band of std 0.4 in z2 around w1 ∈ [−1, 1]; the box cuts off < 1e-13 of it.
    CHECK(std::abs(log_partition_box(U2) - std::log(8 * 0.4 * std::sqrt(2 * pi))) <= 1e-10);
    // U3 is two bands of std 0.35 each; the lower one comes within 5.7 std of the box edge.
    CHECK(std::abs(log_partition_box(U3) - std::log(8 * 2 * 0.35 * std::sqrt(2 * pi))) <= 1e-7);
}

TEST_CASE("log_partition_box reproduces docs/theory.md §7's log Z over (-4, 4)^2") {
    const double reference[] = {1.8775, 2.0821, 2.6417, 2.6846};  // 4 decimals, PyTorch
    for (std::size_t k = 0; k < 4; ++k) {
        const Target& t = targets()[k];
        CAPTURE(t.name);
        const double log_z = log_partition_box(t.energy);
        CHECK(std::abs(log_z - reference[k]) <= 5e-5);
        // The default grid is converged. U1–U3 are (nearly) periodic across the box, where the
        // midpoint rule converges geometrically: half the points change nothing.
        if (t.name != "u4") CHECK(std::abs(log_z - log_partition_box(t.energy, 4.0, 500)) <= 1e-9);
    }
    // U4's sigmoid step is not periodic, so its error is O(h²): ~1.2e-6 with 500 points per axis,
    // a quarter of that with the default 1000.
    CHECK(std::abs(log_partition_box(U4) - log_partition_box(U4, 4.0, 500)) <= 2e-6);
    // U1 decays in every direction: its Z on the box is its Z on the plane.
    CHECK(std::abs(log_partition_box(U1) - log_partition_box(U1, 8.0, 1000)) <= 1e-7);
}

TEST_CASE("log_partition_box rejects bad boxes and bad energies") {
    CHECK_THROWS_WITH_AS(log_partition_box(U1, -1.0), doctest::Contains("log_partition_box"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(log_partition_box(U1, 4.0, 0), doctest::Contains("n = 0"), std::invalid_argument);
    const Energy wrong = [](const Var& z) { return sum(z); };
    CHECK_THROWS_WITH_AS(log_partition_box(wrong, 4.0, 10), doctest::Contains("it returned shape []"),
                         std::invalid_argument);
    const Energy nan = [](const Var& z) { return Var(Tensor::full(Shape{z.shape()[0]}, std::nan(""))); };
    CHECK_THROWS_WITH_AS(log_partition_box(nan, 4.0, 10), doctest::Contains("the energy is NaN at z = (-3.6, -3.6)"), std::invalid_argument);
}

TEST_CASE("energy_density_grid is exp(-U)/Z on the grid, bottom row first, and integrates to 1") {
    const std::size_t n = 200;
    const double box = 4.0;
    const double h = 2 * box / n;
    for (const Target& t : targets()) {
        CAPTURE(t.name);
        const Tensor density = energy_density_grid(t.energy, box, n);
        REQUIRE(density.shape() == Shape{n, n});
        CHECK(std::abs(sum(density).item() * h * h - 1) <= 1e-5);
        // Row r is y_r = −box + (r + ½)h, column c is x_c: density ratios are exp(ΔU).
        const std::size_t r = 37, c = 121;
        const double x = -box + (c + 0.5) * h, y = -box + (r + 0.5) * h;
        const Tensor u = energy_values(t.energy, Tensor{{x, y}, {y, x}});
        REQUIRE(std::abs(u[1] - u[0]) > 0.1);  // so that a transposed grid would fail
        CHECK(std::abs(std::log(density.at({r, c}) / density.at({c, r})) - (u[1] - u[0])) <= 1e-12);
    }
}

TEST_CASE("confined_to_box: U inside the box, U + ½(distance/width)² per coordinate outside") {
    const Energy zero = [](const Var& z) { return sum(z * 0.0, 1); };
    const Energy walled = confined_to_box(zero, 4.0, 0.1);
    const Tensor z{{0.0, 0.0}, {3.99, -3.99}, {4.5, 0.0}, {-4.2, 5.0}};
    const Tensor w = energy_values(walled, z);
    CHECK(w[0] == 0.0);
    CHECK(w[1] == 0.0);
    CHECK(std::abs(w[2] - 0.5 * 25) <= 1e-9);             // (0.5/0.1)² / 2
    CHECK(std::abs(w[3] - 0.5 * (4 + 100)) <= 1e-9);      // (0.2/0.1)² / 2 + (1/0.1)² / 2
    const Tensor u2 = energy_values(confined_to_box(U2), Tensor{{1.0, 0.5}});
    CHECK(u2[0] == energy_values(U2, Tensor{{1.0, 0.5}})[0]);
    CHECK_THROWS_WITH_AS(confined_to_box(Energy{}), doctest::Contains("empty"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(confined_to_box(U2, 4.0, 0.0), doctest::Contains("got 4 and 0"), std::invalid_argument);
}
