#include "tutorials/common/model_comparison.hpp"

#include <doctest/doctest.h>

#include "flows/evaluation.hpp"
#include "flows/realnvp.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::tutorial;

TEST_CASE("comparison_training: the constant rate, then linearly to 0 over the last fifth") {
    const flows::TrainOptions o = comparison_training(100, 32, 0.01, 7);
    CHECK(o.steps == 100);
    CHECK(o.batch == 32);
    CHECK(o.seed == 7);
    REQUIRE(o.schedule);
    CHECK(o.schedule->at(0) == 0.01);
    CHECK(o.schedule->at(79) == 0.01);
    CHECK(o.schedule->at(90) == doctest::Approx(0.01 * 10 / 20).epsilon(1e-14));
    CHECK(o.schedule->at(100) == 0.0);
    // Fewer than five steps still cool down over one.
    const flows::TrainOptions tiny = comparison_training(3, 8, 0.5, 1);
    CHECK(tiny.schedule->at(1) == 0.5);
    CHECK(tiny.schedule->at(2) == doctest::Approx(0.5 / 1).epsilon(1e-14));
}

TEST_CASE("fit_for_comparison: the test NLL before and after, the parameters, the hook before scoring") {
    auto flow = flows::make_realnvp({.dim = 2, .couplings = 2, .hidden = {8, 8}, .seed = 3});
    Rng test_rng(5);
    const flows::Dataset& moons = flows::dataset("moons");
    const Tensor test = moons.sample(500, test_rng);
    const double before = flows::evaluate_nll(*flow, test);
    int hook_calls = 0;
    double nll_at_hook = 0;
    const ComparisonFit f = fit_for_comparison(*flow, moons, test, comparison_training(200, 64, 5e-3, 9), [&] {
        ++hook_calls;
        nll_at_hook = flows::evaluate_nll(*flow, test);
    });
    CHECK(f.parameters == flow->parameter_count());
    CHECK(f.nll_before == before);
    CHECK(hook_calls == 1);
    CHECK(f.nll == nll_at_hook);  // scored after the hook, on the trained flow
    CHECK(f.nll < f.nll_before - 0.1);
    CHECK(f.cpu_ms_per_step > 0);
    CHECK(f.seconds > 0);
}
