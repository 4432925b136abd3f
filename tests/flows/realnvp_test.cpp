#include "flows/realnvp.hpp"

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/actnorm.hpp"
#include "flows/batchnorm.hpp"
#include "flows/conformance.hpp"
#include "flows/coupling.hpp"
#include "flows/datasets.hpp"
#include "flows/distributions.hpp"
#include "flows/evaluation.hpp"
#include "flows/losses.hpp"
#include "nn/checkpoint.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "tensor/random.hpp"
#include "autograd/gradcheck.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Random non-zero last layers, so the couplings are not the identity.
void perturb_couplings(Flow& flow, Rng& rng) {
    for (std::size_t k = 0; k < flow.size(); ++k)
        if (auto* c = dynamic_cast<AffineCoupling*>(&flow.layer(k))) {
            auto& mlp = dynamic_cast<nn::MLP&>(c->conditioner());
            nn::Linear& last = mlp.linear(mlp.depth() - 1);
            last.weight().value = randn(last.weight().value.shape(), rng, 0.0, 0.3);
            last.bias()->value = randn(last.bias()->value.shape(), rng, 0.0, 0.3);
        }
}

double train(Flow& flow, std::size_t steps, std::size_t batch, std::uint64_t seed) {
    nn::Adam adam(flow.parameters(), {.lr = 3e-3});
    Rng rng(seed);
    Tape& tape = Tape::current();
    tape.clear();
    double loss = 0;
    for (std::size_t s = 0; s < steps; ++s) {
        adam.zero_grad();
        const Var l = forward_kl(flow, Var(sample_moons(batch, rng)));
        loss = l.item();
        tape.backward(l);
        adam.step();
        tape.clear();
    }
    return loss;
}

}  // namespace

TEST_CASE("make_realnvp: the default is 8 alternating couplings with MLP 2 → 64 → 64 → 4") {
    const auto flow = make_realnvp();
    CHECK(flow->dim() == 2);
    REQUIRE(flow->size() == 8);
    for (std::size_t k = 0; k < 8; ++k) {
        auto* c = dynamic_cast<AffineCoupling*>(&flow->layer(k));
        REQUIRE(c != nullptr);
        CHECK(equal(c->mask(), alternating_mask(2, k % 2)));
        CHECK(c->conditioner().name() == "MLP(2 → 64 → 64 → 4, relu)");
    }
    CHECK(flow->base().name() == StandardNormal(2).name());
    // Per coupling: scale 2 + (2·64 + 64) + (64·64 + 64) + (64·4 + 4) = 4614.
    CHECK(flow->parameter_count() == 8 * 4614);
    CHECK(flow->named_parameters()[0].first == "layers.0.scale");
}

TEST_CASE("make_realnvp: an untrained flow is exactly its base distribution") {
    const auto flow = make_realnvp({.dim = 3, .couplings = 4, .hidden = {16}});
    Rng rng(1);
    const Tensor x = randn(Shape{10, 3}, rng);
    StandardNormal base(3);
    NoGrad no_grad;
    CHECK(equal(flow->log_prob(Var(x)).value(), base.log_prob(Var(x)).value()));
}

TEST_CASE("make_realnvp: normalization layers between couplings, checkerboard masks") {
    const auto an = make_realnvp({.dim = 4, .couplings = 3, .hidden = {8}, .norm = Normalization::actnorm});
    REQUIRE(an->size() == 5);
    CHECK(dynamic_cast<AffineCoupling*>(&an->layer(0)) != nullptr);
    CHECK(dynamic_cast<ActNorm*>(&an->layer(1)) != nullptr);
    CHECK(dynamic_cast<AffineCoupling*>(&an->layer(2)) != nullptr);
    CHECK(dynamic_cast<ActNorm*>(&an->layer(3)) != nullptr);
    CHECK(equal(dynamic_cast<AffineCoupling&>(an->layer(4)).mask(), alternating_mask(4, 0)));
    const auto bn = make_realnvp({.dim = 6, .couplings = 2, .mask = CouplingMask::checkerboard, .height = 2, .width = 3,
                                  .norm = Normalization::batchnorm});
    REQUIRE(bn->size() == 3);
    CHECK(dynamic_cast<BatchNorm*>(&bn->layer(1)) != nullptr);
    CHECK(equal(dynamic_cast<AffineCoupling&>(bn->layer(0)).mask(), checkerboard_mask(2, 3, 0)));
    CHECK(equal(dynamic_cast<AffineCoupling&>(bn->layer(2)).mask(), checkerboard_mask(2, 3, 1)));
    CHECK(to_string(Normalization::batchnorm) == "batchnorm");
    CHECK(to_string(CouplingMask::checkerboard) == "checkerboard");
}

TEST_CASE("make_realnvp: the seed fixes every weight") {
    const auto a = make_realnvp({.couplings = 2, .hidden = {8}, .seed = 5});
    const auto b = make_realnvp({.couplings = 2, .hidden = {8}, .seed = 5});
    const auto c = make_realnvp({.couplings = 2, .hidden = {8}, .seed = 6});
    const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
    CHECK(equal(pa[1]->value, pb[1]->value));
    CHECK_FALSE(equal(pa[1]->value, pc[1]->value));
}

TEST_CASE("make_realnvp: invalid options") {
    CHECK_THROWS_WITH_AS(make_realnvp({.dim = 1}), doctest::Contains("needs dim ≥ 2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_realnvp({.couplings = 0}), doctest::Contains("at least one coupling"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_realnvp({.hidden = {64, 0}}), doctest::Contains("hidden size 1 is zero in [64, 0]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(make_realnvp({.dim = 6, .mask = CouplingMask::checkerboard, .height = 2, .width = 2}),
                         doctest::Contains("height · width = dim, got 2 · 2 = 4 for dim = 6"), std::invalid_argument);
}

TEST_CASE("make_realnvp: the whole stack passes the conformance kit (D = 2, 3; with each normalization)") {
    Rng rng(2);
    for (const Normalization norm : {Normalization::none, Normalization::actnorm, Normalization::batchnorm}) {
        for (const std::size_t d : {2, 3}) {
            CAPTURE(d);
            CAPTURE(to_string(norm));
            const auto flow = make_realnvp({.dim = d, .couplings = 3, .hidden = {8}, .norm = norm,
                                            .activation = nn::Activation::tanh, .seed = d});
            perturb_couplings(*flow, rng);
            {
                NoGrad no_grad;
                flow->inverse(Var(randn(Shape{64, d}, rng, 0.5, 2.0)));  // initializes ActNorm, moves BatchNorm's averages
            }
            flow->eval();
            CHECK_BIJECTOR(*flow, randn(Shape{12, d}, rng), {.mc_samples = 5000});
        }
    }
}

TEST_CASE("make_realnvp: a short maximum-likelihood run on two moons beats the best Gaussian") {
    const auto flow = make_realnvp({.couplings = 4, .hidden = {32, 32}, .seed = 3});
    Rng test_rng(99);
    const Tensor test = sample_moons(4000, test_rng);
    const double before = evaluate_nll(*flow, test);
    train(*flow, 300, 128, 4);
    const double after = evaluate_nll(*flow, test);
    // The moons have covariance ≈ diag(0.75, 0.25) (a 2-D Gaussian fit has NLL ≈ 1.95 nats).
    CHECK(before > 2.0);
    CHECK(after < 1.6);
    CHECK(std::isfinite(after));
}

TEST_CASE("make_realnvp: jvp of log_prob in x (forward mode through the couplings) matches central differences") {
    for (const Normalization norm : {Normalization::none, Normalization::actnorm, Normalization::batchnorm}) {
        INFO(to_string(norm));
        auto flow = make_realnvp({.dim = 3, .couplings = 4, .hidden = {8, 8}, .norm = norm, .seed = 4});
        Rng rng(5);
        perturb_couplings(*flow, rng);
        const Tensor x = randn(Shape{5, 3}, rng), v = randn(x.shape(), rng);
        if (norm == Normalization::actnorm) flow->log_prob(Var(x));  // ActNorm's data-dependent init, once
        const GradcheckResult r = jvpcheck([&](const std::vector<Var>& in) { return flow->log_prob(in[0]); }, {x}, {v});
        CHECK_MESSAGE(r.ok, r.report);
    }
}

TEST_CASE("module buffers: a checkpoint restores BatchNorm's averages and ActNorm's flag") {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("tapeflow_realnvp_test_" + std::to_string(::getpid()) + ".ckpt")).string();
    for (const Normalization norm : {Normalization::actnorm, Normalization::batchnorm}) {
        CAPTURE(to_string(norm));
        const RealNVPOptions options{.couplings = 3, .hidden = {8}, .norm = norm, .seed = 4};
        const auto flow = make_realnvp(options);
        train(*flow, 20, 64, 5);
        const auto buffers = flow->named_buffers();
        REQUIRE(buffers.size() == (norm == Normalization::batchnorm ? 4 : 2));
        CHECK(buffers[0].first == (norm == Normalization::batchnorm ? "layers.1.running_mean" : "layers.1.initialized"));
        nn::save_checkpoint(path, *flow);

        const auto loaded = make_realnvp(options);
        nn::load_checkpoint(path, *loaded);
        flow->eval();
        loaded->eval();
        Rng rng(6);
        const Tensor x = sample_moons(50, rng);
        NoGrad no_grad;
        CHECK(equal(flow->log_prob(Var(x)).value(), loaded->log_prob(Var(x)).value()));
        if (norm == Normalization::actnorm) CHECK(dynamic_cast<ActNorm&>(loaded->layer(1)).initialized());
    }
    std::filesystem::remove(path);
}
