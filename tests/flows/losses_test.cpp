#include "flows/losses.hpp"

#include <cmath>
#include <memory>
#include <numbers>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/distributions.hpp"
#include "flows/planar.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

std::unique_ptr<Flow> planar_flow(std::size_t d, std::size_t k, std::uint64_t seed) {
    return testing::planar_flow(d, k, seed, {.init_std = 0.7});
}

// U(x) = ½‖x‖²: exp(−U) is the standard normal's shape, Z = 2π in 2-D.
Var half_square(const Var& x) { return 0.5 * sum(square(x), 1); }

}  // namespace

TEST_CASE("forward_kl is the mean negative log-likelihood") {
    auto flow = planar_flow(2, 2, 1);
    const Tensor x{{0.5, -1.0}, {2.0, 0.3}, {-0.4, 0.0}};
    const double nll = -tapeflow::mean(flow->log_prob(Var(x)).value()).item();
    CHECK(std::abs(forward_kl(*flow, Var(x)).item() - nll) <= 1e-15);
    Flow identity(std::make_unique<StandardNormal>(2));
    // −log N(0 | 0, I) = log 2π.
    CHECK(std::abs(forward_kl(identity, Var(Tensor{{0.0, 0.0}})).item() - std::log(2 * std::numbers::pi)) <= 1e-15);
    CHECK_THROWS_WITH_AS(forward_kl(*flow, Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("forward_kl"), std::invalid_argument);
    const auto g = gradcheck([&](const std::vector<Var>& v) { return forward_kl(*flow, v[0]); }, {x},
                             {.parameters = flow->parameters()});
    CHECK_MESSAGE(g.ok, g.report);
}

TEST_CASE("reverse_kl: exact when q = exp(−U)/Z, an upper bound on −log Z otherwise") {
    Flow identity(std::make_unique<StandardNormal>(2));
    Rng rng(2);
    // log q(x) + U(x) = −log 2π for every sample: zero variance.
    CHECK(std::abs(reverse_kl(identity, half_square, 64, 1.0, rng).item() + std::log(2 * std::numbers::pi)) <= 1e-14);
    // Any other q pays a positive KL (estimated on many samples).
    auto flow = planar_flow(2, 2, 3);
    const double loss = reverse_kl(*flow, half_square, 20000, 1.0, rng).item();
    CHECK(loss > -std::log(2 * std::numbers::pi));
    // β scales the energy term only.
    Rng a(5), b(5);
    const double at_half = reverse_kl(*flow, half_square, 16, 0.5, a).item();
    const FlowSample s = flow->sample_and_log_prob(16, b);
    const double by_hand =
        tapeflow::mean(s.log_prob.value() + 0.5 * half_square(s.value).value()).item();
    CHECK(std::abs(at_half - by_hand) <= 1e-14);
}

TEST_CASE("reverse_kl: gradcheck in the flow's parameters and the energy's, with a fixed seed") {
    auto flow = planar_flow(2, 2, 4);
    // The same seed on every call makes the stochastic estimate a deterministic function.
    const auto g = gradcheck(
        [&](const std::vector<Var>& v) {
            Rng rng(17);
            const Var centre = v[0];
            const Energy shifted = [&centre](const Var& x) { return 0.5 * sum(square(x - centre), 1); };
            return reverse_kl(*flow, shifted, 8, 0.7, rng);
        },
        {Tensor{0.5, -1.0}}, {.parameters = flow->parameters()});
    CHECK_MESSAGE(g.ok, g.report);
}

TEST_CASE("reverse_kl: invalid arguments") {
    auto flow = planar_flow(2, 1, 5);
    Rng rng(6);
    CHECK_THROWS_WITH_AS(reverse_kl(*flow, half_square, 0, 1.0, rng), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(reverse_kl(*flow, half_square, 4, NAN, rng), doctest::Contains("β must be finite"),
                         std::invalid_argument);
    const Energy wrong = [](const Var& x) { return sum(square(x), 1, true); };  // [n, 1]
    CHECK_THROWS_WITH_AS(reverse_kl(*flow, wrong, 4, 1.0, rng), doctest::Contains("shape [4], got [4, 1]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(reverse_kl(*flow, Energy{}, 4, 1.0, rng), doctest::Contains("empty"), std::invalid_argument);
}

TEST_CASE("annealing_beta: min(1, 0.01 + t/10000)") {
    CHECK(annealing_beta(0) == 0.01);
    CHECK(std::abs(annealing_beta(5000) - 0.51) <= 1e-15);
    CHECK(std::abs(annealing_beta(9899) - 0.9999) <= 1e-15);
    CHECK(annealing_beta(9900) == 1.0);
    CHECK(annealing_beta(1000000) == 1.0);
}

TEST_CASE("AnnealingSchedule: a warm-up min(1, β₀ + t/T) of any length, then β = 1") {
    const AnnealingSchedule short_warmup{.beta_start = 0.1, .warmup_steps = 100};
    CHECK(short_warmup.beta(0) == 0.1);
    CHECK(std::abs(short_warmup.beta(45) - 0.55) <= 1e-15);
    CHECK(short_warmup.beta(90) == 1.0);
    CHECK(short_warmup.beta(5000) == 1.0);
    CHECK(annealing_beta(45, short_warmup) == short_warmup.beta(45));
    CHECK_THROWS_WITH_AS((AnnealingSchedule{.beta_start = 0.0}.beta(0)), doctest::Contains("beta_start must be in (0, 1]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((AnnealingSchedule{.beta_start = 1.5}.beta(0)), doctest::Contains("got 1.5"), std::invalid_argument);
    CHECK_THROWS_WITH_AS((AnnealingSchedule{.warmup_steps = 0}.beta(0)), doctest::Contains("warmup_steps must be at least 1"),
                         std::invalid_argument);
}
