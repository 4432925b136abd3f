#include "flows/conditional.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "flows/autoregressive.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/permutation.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

using testing::randomize_parameters;

// MAF(c) → reverse → IAF(c) on D = 2 with a context of C = 1, all weights random.
std::unique_ptr<ConditionalFlow> small_conditional_flow(std::uint64_t seed) {
    Rng rng(seed);
    auto flow = std::make_unique<ConditionalFlow>(std::make_unique<StandardNormal>(2), 1);
    flow->add(std::make_unique<MAF>(2, rng, AutoregressiveOptions{.hidden = {8}, .context_dim = 1}));
    flow->add(Permutation::reverse(2));
    flow->add(std::make_unique<IAF>(2, rng, AutoregressiveOptions{.hidden = {8}, .context_dim = 1}));
    randomize_parameters(*flow, rng, 0.4);
    return flow;
}

}  // namespace

TEST_CASE("conditional MAF and IAF pass the conformance kit at fixed contexts") {
    Rng rng(1);
    const Tensor contexts(Shape{3, 2}, {0.5, 0.2, 1.5, -0.5, -2.0, 3.0});
    const Tensor points = randn(Shape{5, 2}, rng);
    MAF maf(2, rng, {.hidden = {8}, .context_dim = 2, .activation = nn::Activation::tanh});
    randomize_parameters(maf, rng, 0.3);
    CHECK_CONDITIONAL_BIJECTOR(maf, points, contexts, {.mc_samples = 5000});
    IAF iaf(2, rng, {.hidden = {8}, .context_dim = 2});
    randomize_parameters(iaf, rng, 0.3);
    const std::vector<ConformanceReport> reports = check_conditional_bijector(iaf, points, contexts);
    REQUIRE(reports.size() == 3);
    for (const ConformanceReport& r : reports) CHECK_MESSAGE(r.ok, r.to_string());
    CHECK(reports[1].bijector == "IAF(D = 2, MADE(2 → 8 → 2×2 + context 2)) at c = [1.5, -0.5]");
    // The gradient checks see the conditional bijector's parameters through the view.
    CHECK(reports[0].find("parameter_gradients")->detail ==
          fmt::format("all {} parameters get a gradient both ways", iaf.parameters().size()));
    CHECK_THROWS_WITH_AS(check_conditional_bijector(iaf, points, Tensor{{1.0, 2.0, 3.0}}),
                         doctest::Contains("contexts must be a non-empty batch [K, 2]"), std::invalid_argument);
    MAF plain(2, rng);
    CHECK_THROWS_WITH_AS(check_conditional_bijector(plain, points, contexts), doctest::Contains("takes no context"),
                         std::invalid_argument);
}

TEST_CASE("ConditionalFlow: log_prob(x, c) is the flow at that context, both passes agree, and c matters") {
    auto flow = small_conditional_flow(2);
    Rng rng(3);
    const Tensor x = randn(Shape{4, 2}, rng);
    const Tensor c{0.7};
    // At one context, the layers as plain bijectors (AtContext) give the same density.
    Flow at_c(std::make_unique<StandardNormal>(2));
    NoGrad no_grad;
    const Tensor c_rows = Tensor::full(Shape{4, 1}, 0.7);
    const Tensor lp = flow->log_prob(Var(x), Var(c_rows)).value();
    {
        AtContext first(dynamic_cast<ConditionalBijector&>(flow->layer(0)), c);
        AtContext third(dynamic_cast<ConditionalBijector&>(flow->layer(2)), c);
        const Transformed back3 = third.inverse(Var(x));
        const Transformed back2 = flow->layer(1).inverse(back3.value);
        const Transformed back1 = first.inverse(back2.value);
        const Tensor by_hand = (StandardNormal(2).log_prob(back1.value) + back1.log_abs_det_jacobian +
                                back2.log_abs_det_jacobian + back3.log_abs_det_jacobian)
                                   .value();
        CHECK(max_abs_diff(lp, by_hand) <= 1e-13);
    }
    // Another context, another density.
    const Tensor other = flow->log_prob(Var(x), Var(Tensor::full(Shape{4, 1}, -1.0))).value();
    CHECK(max_abs_diff(lp, other) > 1e-3);
    // sample_and_log_prob (forward pass) agrees with log_prob (inverse pass) at its samples.
    const FlowSample s = flow->sample_and_log_prob(50, c, rng);
    CHECK(max_abs_diff(flow->log_prob(s.value, Var(Tensor::full(Shape{50, 1}, 0.7))).value(), s.log_prob.value()) <= 1e-10);
    // One context for all samples, or one per sample: the same draws for the same seed.
    Rng r1(9), r2(9);
    CHECK(max_abs_diff(flow->sample(6, c, r1), flow->sample(6, Tensor::full(Shape{6, 1}, 0.7), r2)) == 0);
    CHECK(flow->name() == "ConditionalFlow(StandardNormal(D = 2), C = 1, 3 layers)");
}

TEST_CASE("ConditionalFlow and AtContext reject what they cannot use, naming it") {
    auto flow = small_conditional_flow(4);
    const Var x(Tensor{{0.1, 0.2}});
    CHECK_THROWS_WITH_AS(flow->log_prob(x, Var()), doctest::Contains("needs a context [N, 1], got none"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(flow->log_prob(x, Var(Tensor{{1.0, 2.0}})),
                         doctest::Contains("ConditionalFlow::inverse: expects a context [1, 1] (one row per sample), got shape [1, 2]"),
                         std::invalid_argument);
    Rng rng(5);
    CHECK_THROWS_WITH_AS(flow->sample(3, Tensor{1.0, 2.0}, rng),
                         doctest::Contains("ConditionalFlow::sample: expects one context [1] (or [1, 1]), got shape [2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(flow->sample(0, Tensor{1.0}, rng), doctest::Contains("at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(flow->add(std::make_unique<MAF>(2, rng, AutoregressiveOptions{.context_dim = 2})),
                         doctest::Contains("takes a context of C = 2, the flow's has C = 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(ConditionalFlow(std::make_unique<StandardNormal>(2), 0), doctest::Contains("use Flow"),
                         std::invalid_argument);
    MAF conditional(2, rng, {.context_dim = 1});
    CHECK_THROWS_WITH_AS(AtContext(conditional, Tensor{NAN}), doctest::Contains("finite"), std::invalid_argument);
    MAF plain(2, rng);
    CHECK_THROWS_WITH_AS(AtContext(plain, Tensor{1.0}), doctest::Contains("expects one context [0]"), std::invalid_argument);
}
