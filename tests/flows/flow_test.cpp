#include "flows/flow.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "flows/planar.hpp"
#include "flows/radial.hpp"
#include "tensor/linalg.hpp"
#include "tensor/shape_ops.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Planar → Radial → Affine on a base, with parameters far enough from the identity to matter.
std::unique_ptr<Flow> three_layer_flow(std::size_t d, std::unique_ptr<Distribution> base, std::uint64_t seed = 1) {
    Rng rng(seed);
    std::vector<std::unique_ptr<Bijector>> layers;
    layers.push_back(std::make_unique<Planar>(d, rng, PlanarOptions{.init_std = 1.0}));
    layers.push_back(std::make_unique<Radial>(d, rng, RadialOptions{.init_std = 0.8}));
    layers.push_back(std::make_unique<Affine>(randn(Shape{d}, rng, 0.0, 0.3), randn(Shape{d}, rng, 0.0, 0.3)));
    return std::make_unique<Flow>(std::move(base), std::move(layers));
}

}  // namespace

TEST_CASE("Flow: children are named base and layers.k, so parameters read layers.3.w") {
    auto flow = three_layer_flow(2, std::make_unique<DiagNormal>(2));
    const std::vector<std::string> names = testing::parameter_names(*flow);
    const std::vector<std::string> expected{"base.mean",   "base.log_std",      "layers.0.u",         "layers.0.w",
                                            "layers.0.b",  "layers.1.z0",       "layers.1.alpha_prime",
                                            "layers.1.beta_prime", "layers.2.loc", "layers.2.log_scale"};
    CHECK(names == expected);
    CHECK(flow->size() == 3);
    CHECK(flow->dim() == 2);
    CHECK(flow->layer(1).name() == "Radial(D = 2)");
    CHECK(flow->name() == "Flow(DiagNormal(D = 2), 3 layers)");
    CHECK_THROWS_WITH_AS(flow->layer(3), doctest::Contains("index 3 is out of range"), std::invalid_argument);
}

TEST_CASE("Flow: a layer whose D differs from the base's is rejected, naming the layer and both dimensions") {
    Rng rng(2);
    std::vector<std::unique_ptr<Bijector>> layers;
    layers.push_back(std::make_unique<Planar>(2, rng));
    layers.push_back(std::make_unique<Planar>(3, rng));
    CHECK_THROWS_WITH_AS(Flow(std::make_unique<StandardNormal>(2), std::move(layers)),
                         doctest::Contains("layer 1 (Planar(D = 3)) acts on D = 3, but the base distribution "
                                           "(StandardNormal(D = 2)) has D = 2"),
                         std::invalid_argument);
    Flow flow(std::make_unique<StandardNormal>(2));
    flow.add(std::make_unique<Radial>(2, rng));
    CHECK_THROWS_WITH_AS(flow.add(std::make_unique<Affine>(5)), doctest::Contains("layer 1"), std::invalid_argument);
    CHECK(flow.size() == 1);
    CHECK_THROWS_WITH_AS(flow.add(nullptr), doctest::Contains("layer 1 is null"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Flow(nullptr), doctest::Contains("base distribution is null"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(flow.log_prob(Var(Tensor{{1.0, 2.0, 3.0}})), doctest::Contains("Flow::log_prob"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(flow.sample(0, rng), doctest::Contains("at least 1"), std::invalid_argument);
}

TEST_CASE("Flow: with no layers it is its base distribution") {
    Flow flow(std::make_unique<StandardNormal>(3));
    const Tensor x{{0.5, -1.0, 2.0}, {0.0, 0.0, 0.0}};
    StandardNormal base(3);
    CHECK(equal(flow.log_prob(Var(x)).value(), base.log_prob(Var(x)).value()));
    const Transformed f = flow.forward(Var(x));
    CHECK(equal(f.value.value(), x));
    CHECK(equal(f.log_abs_det_jacobian.value(), Tensor{0.0, 0.0}));
}

TEST_CASE("Flow: log-dets add along the chain (= slogdet of the product of the layers' Jacobians)") {
    const std::size_t d = 3;
    auto flow = three_layer_flow(d, std::make_unique<StandardNormal>(d));
    Rng rng(3);
    const Tensor z = randn(Shape{6, d}, rng);
    const Tensor ld = flow->forward(Var(z)).log_abs_det_jacobian.value();
    for (std::size_t i = 0; i < 6; ++i) {
        Tensor point = narrow(z, 0, i, 1).clone();
        Tensor product = Tensor::zeros(Shape{d, d});
        for (std::size_t j = 0; j < d; ++j) product[j * d + j] = 1;
        for (std::size_t k = 0; k < flow->size(); ++k) {
            Bijector& layer = flow->layer(k);
            const Tensor J = jacobian([&](const Var& v) { return layer.forward(v).value; }, point);
            product = matmul(J, product);  // J_f = J_K ⋯ J_1
            point = layer.forward(Var(point)).value.value();
        }
        const SignLogDet s = slogdet(product);
        CHECK(s.sign != 0);
        CHECK(std::abs(ld[i] - s.log_abs_det) <= 1e-12);
        const Tensor whole = jacobian([&](const Var& v) { return flow->forward(v).value; }, narrow(z, 0, i, 1).clone());
        CHECK(std::abs(ld[i] - slogdet(whole).log_abs_det) <= 1e-12);
    }
}

TEST_CASE("Flow: log_prob by the inverse pass agrees with sample_and_log_prob by the forward pass") {
    auto flow = three_layer_flow(2, std::make_unique<DiagNormal>(2));
    Rng rng(4);
    const FlowSample s = flow->sample_and_log_prob(200, rng);
    REQUIRE(s.value.shape() == Shape{200, 2});
    REQUIRE(s.log_prob.shape() == Shape{200});
    CHECK(max_abs_diff(flow->log_prob(Var(s.value.value())).value(), s.log_prob.value()) <= 1e-11);
    // sample() draws the same base samples from the same seed, without recording.
    Rng again(4);
    const Tensor x = flow->sample(200, again);
    CHECK(equal(x, s.value.value()));
    // Round trip through the whole stack.
    const Transformed back = flow->inverse(Var(x));
    Rng base_rng(4);
    const Tensor z = flow->base().sample(200, base_rng).value();
    CHECK(max_abs_diff(back.value.value(), z) <= 1e-12);
}

TEST_CASE("Flow: gradcheck of log_prob and of sample_and_log_prob (fixed seed)") {
    auto flow = three_layer_flow(2, std::make_unique<DiagNormal>(2), 5);
    const auto lp = gradcheck([&](const std::vector<Var>& v) { return flow->log_prob(v[0]); },
                              {Tensor{{0.3, -0.8}, {1.2, 0.4}}}, {.parameters = flow->parameters()});
    CHECK_MESSAGE(lp.ok, lp.report);
    const auto s = gradcheck(
        [&](const std::vector<Var>& v) {
            Rng rng(9);
            const FlowSample fs = flow->sample_and_log_prob(3, rng);
            return concat({flatten(fs.value * v[0]), fs.log_prob}, 0);
        },
        {Tensor{1.0, -2.0}}, {.parameters = flow->parameters()});
    CHECK_MESSAGE(s.ok, s.report);
}

TEST_CASE("Flow: a flow is a Bijector, so it nests as a layer and its map equals its layers'") {
    auto inner = three_layer_flow(2, std::make_unique<StandardNormal>(2), 8);
    Flow& inner_ref = *inner;
    Rng rng(9);
    Flow outer(std::make_unique<StandardNormal>(2));
    outer.add(std::make_unique<Radial>(2, rng, RadialOptions{.init_std = 0.5}));
    outer.add(std::move(inner));
    const Tensor z = randn(Shape{5, 2}, rng);
    NoGrad no_grad;
    const Transformed first = outer.layer(0).forward(Var(z));
    const Transformed second = inner_ref.forward(first.value);
    const Transformed whole = outer.forward(Var(z));
    CHECK(max_abs_diff(whole.value.value(), second.value.value()) == 0);
    CHECK(max_abs_diff(whole.log_abs_det_jacobian.value(),
                       (first.log_abs_det_jacobian + second.log_abs_det_jacobian).value()) <= 1e-14);
    CHECK(outer.named_parameters()[3].first == "layers.1.layers.0.u");
    // pushforward_log_prob is log_prob without a Flow around the map.
    StandardNormal base(2);
    CHECK(max_abs_diff(pushforward_log_prob(outer, base, Var(z)).value(), outer.log_prob(Var(z)).value()) <= 1e-14);
    CHECK_THROWS_WITH_AS(pushforward_log_prob(outer, base, Var(Tensor{{1.0, 2.0, 3.0}})),
                         doctest::Contains("pushforward_log_prob: expects dimension D = 2, got shape [1, 3]"),
                         std::invalid_argument);
}

TEST_CASE("Flow: the conformance kit integrates a flow's own density and skips its base's parameters") {
    // A trainable base shifted far from the origin: a check of N(0, I) through the map could not see
    // a wrong base log_prob, and the base's parameters never get a gradient from forward/inverse.
    auto base = std::make_unique<DiagNormal>(2);
    base->parameters()[0]->value = Tensor{1.5, -1.0};
    base->parameters()[1]->value = Tensor{std::log(0.7), std::log(1.3)};
    auto flow = three_layer_flow(2, std::move(base), 10);
    Rng rng(11);
    const ConformanceReport r = check_bijector(*flow, randn(Shape{6, 2}, rng));
    CHECK_MESSAGE(r.ok, r.to_string());
    CHECK(r.find("density")->detail.find("the density of DiagNormal(D = 2) → Flow(DiagNormal(D = 2), 3 layers)") !=
          std::string::npos);
    CHECK(r.find("parameter_gradients")->detail == "all 8 parameters get a gradient both ways");
}

TEST_CASE("Flow: the whole stack passes the conformance kit (density integrates to 1)") {
    for (const std::size_t d : {2, 4}) {
        auto flow = three_layer_flow(d, std::make_unique<StandardNormal>(d), 6);
        Rng rng(7);
        ConformanceOptions o;
        o.grid_points_2d = 301;
        CHECK_BIJECTOR(*flow, randn(Shape{12, d}, rng), o);
    }
}
