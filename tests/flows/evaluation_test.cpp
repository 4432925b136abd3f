// Evaluating flows: the reverse-KL loss and KL on the box against closed forms (a flow equal to its
// target, and one shifted from it), the NLL against the normal log-density, and density grids that
// integrate to 1 with row 0 at the bottom.
#include "flows/evaluation.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <numbers>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

constexpr double pi = std::numbers::pi;

// N(0, I₂), or N(loc, I₂) through an affine layer.
std::unique_ptr<Flow> normal_flow(std::size_t dim = 2) { return std::make_unique<Flow>(std::make_unique<StandardNormal>(dim)); }
std::unique_ptr<Flow> shifted_flow(const Tensor& loc) {
    auto flow = normal_flow();
    flow->add(std::make_unique<Affine>(loc, Tensor::zeros(Shape{2})));
    return flow;
}

// U(x) = ½‖x‖²: the standard normal, Z = 2π on the plane.
Var half_square_norm(const Var& x) { return 0.5 * sum(square(x), 1); }

}  // namespace

TEST_CASE("evaluate_reverse_kl of a flow equal to its target: loss = −log Z, KL_box = log of the box's mass") {
    auto flow = normal_flow();
    Rng rng(1);
    const ReverseKLEvaluation e = evaluate_reverse_kl(*flow, half_square_norm, 10000, rng);
    // log q + U = −log 2π for every sample.
    CHECK(std::abs(e.loss + std::log(2 * pi)) <= 1e-12);
    CHECK(e.standard_error <= 1e-14);
    // Z_box = 2π·erf(4/√2)², so KL_box = loss + log Z_box = 2 log erf(2√2) ≈ −1.27e-4: the KL of q
    // from the target restricted to the box, less the mass q puts outside it.
    const double box_mass = std::pow(std::erf(4 / std::sqrt(2.0)), 2);
    // (The midpoint rule is off by ~6e-9 here: the density left at the box's edge is not periodic.)
    CHECK(std::abs(e.log_z_box - std::log(2 * pi * box_mass)) <= 1e-8);
    CHECK(std::abs(e.kl_box - std::log(box_mass)) <= 1e-8);
    // On a box that holds all the mass the KL is 0.
    const ReverseKLEvaluation wide = evaluate_reverse_kl(*flow, half_square_norm, 100, rng, 12.0);
    CHECK(std::abs(wide.kl_box) <= 1e-12);
}

TEST_CASE("evaluate_reverse_kl of a shifted flow: KL(N(μ, I) ‖ N(0, I)) = ½‖μ‖²") {
    const Tensor mu{0.5, -0.3};
    auto flow = shifted_flow(mu);
    Rng rng(2);
    // 20000 samples: more than two chunks.
    const ReverseKLEvaluation e = evaluate_reverse_kl(*flow, half_square_norm, 20000, rng, 12.0);
    // log q + U = −log 2π + ½‖μ‖² + zᵀμ with z ~ N(0, I): standard error ‖μ‖/√n.
    const double kl = 0.5 * (0.25 + 0.09);
    const double expected_error = std::sqrt(0.34 / 20000);
    CHECK(std::abs(e.standard_error / expected_error - 1) <= 0.03);
    CHECK(std::abs(e.loss - (kl - std::log(2 * pi))) <= 4 * expected_error);
    CHECK(std::abs(e.kl_box - kl) <= 4 * expected_error);
}

TEST_CASE("evaluate_reverse_kl rejects what it cannot evaluate") {
    Rng rng(3);
    auto flow = normal_flow();
    auto flow3 = normal_flow(3);
    CHECK_THROWS_WITH_AS(evaluate_reverse_kl(*flow3, half_square_norm, 10, rng),
                         doctest::Contains("evaluate_reverse_kl: the flow must be 2-D, got D = 3"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_reverse_kl(*flow, half_square_norm, 0, rng), doctest::Contains("n_samples"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_reverse_kl(*flow, Energy{}, 10, rng), doctest::Contains("energy function is empty"),
                         std::invalid_argument);
    const Energy per_coordinate = [](const Var& x) { return 0.5 * square(x); };
    CHECK_THROWS_WITH_AS(evaluate_reverse_kl(*flow, per_coordinate, 10, rng), doctest::Contains("evaluate_reverse_kl: the energy must return one value per sample, shape [10], got [10, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_reverse_kl(*flow, half_square_norm, 10, rng, -4.0),
                         doctest::Contains("box half-width"), std::invalid_argument);
}

TEST_CASE("evaluate_box_kl: q equal to the target on the box gives 0 and the box's mass, whatever the box") {
    // q = N(0, I₂) = exp(−½‖x‖²)/2π: conditioned on (−1, 1)², q_box = p_box exactly, and the mass is
    // m = erf(1/√2)² = 0.466…; the estimate of KL is then log(m/m̂), zero up to the mass's noise.
    auto flow = normal_flow();
    const double m = std::pow(std::erf(1 / std::sqrt(2.0)), 2);
    Rng rng(5);
    const BoxKLEvaluation e = evaluate_box_kl(*flow, half_square_norm, std::log(2 * pi * m), 40000, rng, 1.0);
    CHECK(std::abs(e.mass - m) <= 4 * std::sqrt(m * (1 - m) / 40000));
    CHECK(std::abs(e.kl - std::log(m / e.mass)) <= 1e-12);
    CHECK(std::abs(e.kl) <= 4 * e.standard_error);
    CHECK(e.standard_error > 0);
}

TEST_CASE("evaluate_box_kl of a shifted flow on a wide box: KL(N(μ, I) ‖ N(0, I)) = ½‖μ‖²") {
    auto flow = shifted_flow(Tensor{0.6, -0.8});  // ½‖μ‖² = 0.5
    Rng rng(6);
    const BoxKLEvaluation e = evaluate_box_kl(*flow, half_square_norm, std::log(2 * pi), 40000, rng, 12.0);
    CHECK(e.mass == 1.0);
    CHECK(std::abs(e.kl - 0.5) <= 4 * e.standard_error);
    CHECK(e.standard_error < 0.01);
}

TEST_CASE("evaluate_box_kl rejects what it cannot evaluate, and is NaN when nothing lands in the box") {
    auto flow = normal_flow();
    Rng rng(7);
    CHECK_THROWS_WITH_AS(evaluate_box_kl(*flow, half_square_norm, 0.0, 0, rng), doctest::Contains("n_samples"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_box_kl(*flow, Energy{}, 0.0, 10, rng), doctest::Contains("empty"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_box_kl(*flow, half_square_norm, 0.0, 10, rng, -1.0), doctest::Contains("got -1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_box_kl(*flow, half_square_norm, NAN, 10, rng), doctest::Contains("log_z_box"),
                         std::invalid_argument);
    auto three = normal_flow(3);
    CHECK_THROWS_WITH_AS(evaluate_box_kl(*three, half_square_norm, 0.0, 10, rng), doctest::Contains("D = 3"),
                         std::invalid_argument);
    auto far = shifted_flow(Tensor{100.0, 0.0});
    const BoxKLEvaluation e = evaluate_box_kl(*far, half_square_norm, 0.0, 100, rng);
    CHECK(e.mass == 0.0);
    CHECK(std::isnan(e.kl));
}

TEST_CASE("evaluate_nll is the mean negative log-density, in any dimension") {
    Rng rng(4);
    for (std::size_t dim : {2u, 3u}) {
        CAPTURE(dim);
        auto flow = normal_flow(dim);
        const Tensor x = randn(Shape{20000, dim}, rng);
        const double expected = mean(sum(square(x), 1)).item() / 2 + static_cast<double>(dim) / 2 * std::log(2 * pi);
        CHECK(std::abs(evaluate_nll(*flow, x) - expected) <= 1e-12 * expected);
    }
    auto flow = normal_flow();
    CHECK_THROWS_WITH_AS(evaluate_nll(*flow, Tensor::zeros(Shape{4, 3})), doctest::Contains("evaluate_nll"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_nll(*flow, Tensor::zeros(Shape{0, 2})), doctest::Contains("non-empty"),
                         std::invalid_argument);
}

TEST_CASE("density_grid integrates to 1 and lays the grid out bottom row first") {
    const std::size_t n = 120;
    const double box = 6.0, h = 2 * box / n;
    const Tensor loc{2.0, -1.0};
    auto flow = shifted_flow(loc);
    const Tensor q = density_grid(*flow, box, n);
    REQUIRE(q.shape() == Shape{n, n});
    // The mass of N(loc, I) inside (−6, 6)² is 1 − 3.2e-5 (the edge x = 6 is 4 std from 2); the
    // midpoint rule's error from the density left at that edge is ~h²/24·q' ≈ 2e-7.
    const double inside = 0.25 * (std::erf((box - 2) / std::sqrt(2.0)) + std::erf((box + 2) / std::sqrt(2.0))) *
                          (std::erf((box + 1) / std::sqrt(2.0)) + std::erf((box - 1) / std::sqrt(2.0)));
    CHECK(std::abs(sum(q).item() * h * h - inside) <= 1e-6);
    CHECK(std::abs(grid_mass(q, box) - inside) <= 1e-6);
    CHECK(inside < 1 - 3e-5);
    // Row r is y_r = −6 + (r + ½)h: the peak at (2, −1) is at row 49.5, column 79.5.
    const std::size_t r = 49, c = 79;
    const double x = -box + (c + 0.5) * h, y = -box + (r + 0.5) * h;
    const double expected = std::exp(-0.5 * ((x - 2) * (x - 2) + (y + 1) * (y + 1))) / (2 * pi);
    CHECK(std::abs(q.at({r, c}) - expected) <= 1e-14);
    CHECK(q.at({r, c}) > q.at({c, r}));
}

TEST_CASE("density_grid records nothing and rejects bad grids") {
    auto flow = normal_flow();
    Tape& tape = Tape::current();
    const std::size_t before = tape.size();
    density_grid(*flow, 4.0, 10);
    CHECK(tape.size() == before);
    auto flow3 = normal_flow(3);
    CHECK_THROWS_WITH_AS(density_grid(*flow3), doctest::Contains("density_grid: the flow must be 2-D"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(density_grid(*flow, 0.0), doctest::Contains("box half-width"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(density_grid(*flow, 4.0, 0), doctest::Contains("n = 0"), std::invalid_argument);
}

TEST_CASE("grid_mass is Σ q·h² over a square grid and rejects anything else") {
    // A constant density 1/16 on the box (−2, 2)² (h = 1 on a 4 × 4 grid) holds mass 1 exactly.
    CHECK(grid_mass(Tensor::full(Shape{4, 4}, 1.0 / 16), 2.0) == 1.0);
    // The same values on a 2 × 8 grid are not a density_grid result.
    CHECK_THROWS_WITH_AS(grid_mass(Tensor::full(Shape{2, 8}, 1.0), 2.0), doctest::Contains("square [n, n]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(grid_mass(Tensor::full(Shape{4, 4}, 1.0), -1.0), doctest::Contains("box half-width"),
                         std::invalid_argument);
}

namespace {

// Mass of N(loc, diag(scale²)) in (−box, box)²: a product of normal-CDF differences.
double normal_box_mass(const Tensor& loc, const Tensor& scale, double box) {
    double m = 1;
    for (std::size_t d = 0; d < 2; ++d)
        m *= 0.5 * (std::erf((box - loc[d]) / (scale[d] * std::numbers::sqrt2)) - std::erf((-box - loc[d]) / (scale[d] * std::numbers::sqrt2)));
    return m;
}
std::unique_ptr<Flow> scaled_flow(const Tensor& loc, const Tensor& scale) {
    auto flow = normal_flow();
    flow->add(std::make_unique<Affine>(loc, log(scale)));
    return flow;
}

}  // namespace

TEST_CASE("shifted_grid_mass is unbiased with an honest error bar, even where a fixed grid cannot resolve q") {
    // A narrow normal (σ = 0.05) on a 10 × 10 grid of cells 0.8 wide: a fixed midpoint grid sees only
    // the density at the cell centres, the shifted grids average over each cell.
    const Tensor loc{0.13, -0.31}, scale{0.05, 0.05};
    auto flow = scaled_flow(loc, scale);
    const double exact = normal_box_mass(loc, scale, 4.0);
    CHECK(std::abs(grid_mass(density_grid(*flow, 4.0, 10), 4.0) - exact) > 0.5);  // the fixed grid is far off
    Rng rng(3);
    const BoxMass m = shifted_grid_mass(*flow, 4.0, 10, 400, rng);
    CAPTURE(m.mass);
    CAPTURE(m.standard_error);
    CHECK(m.standard_error > 0.01);  // the error bar says the grid is coarse
    CHECK(std::abs(m.mass - exact) <= 4 * m.standard_error);
    // A smooth q on a fine grid: the error bar shrinks, and a box that cuts q is measured as well.
    auto wide = scaled_flow(Tensor{1.0, 0.5}, Tensor{1.5, 0.8});
    const double cut = normal_box_mass(Tensor{1.0, 0.5}, Tensor{1.5, 0.8}, 2.0);
    Rng rng2(4);
    const BoxMass w = shifted_grid_mass(*wide, 2.0, 60, 6, rng2);
    CHECK(w.standard_error < 5e-3);  // 1.1e-3 measured: the box edge cuts q, the cells along it vary
    CHECK(std::abs(w.mass - cut) <= 5 * w.standard_error + 1e-12);
}

TEST_CASE("box_fraction is the share of samples in the box, with its binomial error bar") {
    const Tensor loc{0.3, 0.0}, scale{1.0, 1.0};
    auto flow = scaled_flow(loc, scale);
    Rng rng(5);
    const BoxMass f = box_fraction(*flow, 20000, rng, 1.0);
    const double exact = normal_box_mass(loc, scale, 1.0);
    CHECK(f.standard_error == doctest::Approx(std::sqrt(f.mass * (1 - f.mass) / 20000)));
    CHECK(std::abs(f.mass - exact) <= 4 * f.standard_error);
    // Every sample inside: the error bar is floored at 1/n, not 0.
    Rng rng2(6);
    const BoxMass all = box_fraction(*flow, 1000, rng2, 50.0);
    CHECK(all.mass == 1);
    CHECK(all.standard_error == doctest::Approx(std::sqrt(1.0 / 1000 / 1000)));
}

TEST_CASE("shifted_grid_mass and box_fraction reject what they cannot evaluate") {
    auto flow = normal_flow();
    auto flow3 = normal_flow(3);
    Rng rng(1);
    CHECK_THROWS_AS(shifted_grid_mass(*flow3, 4.0, 10, 6, rng), std::invalid_argument);
    CHECK_THROWS_WITH_AS(shifted_grid_mass(*flow, 0.0, 10, 6, rng), "shifted_grid_mass: box must be > 0 and finite, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(shifted_grid_mass(*flow, 4.0, 0, 6, rng),
                         "shifted_grid_mass: the grid needs at least one point per axis, got n = 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(shifted_grid_mass(*flow, 4.0, 10, 1, rng),
                         "shifted_grid_mass: an error bar needs at least 2 shifts, got 1", std::invalid_argument);
    CHECK_THROWS_AS(box_fraction(*flow3, 10, rng), std::invalid_argument);
    CHECK_THROWS_WITH_AS(box_fraction(*flow, 0, rng), "box_fraction: n_samples must be at least 1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(box_fraction(*flow, 10, rng, -1.0), "box_fraction: box must be > 0 and finite, got -1",
                         std::invalid_argument);
}
