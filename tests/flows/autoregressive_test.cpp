#include "flows/autoregressive.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/gradcheck.hpp"
#include "flows/conformance.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/permutation.hpp"
#include "tensor/random.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

using testing::randomize_parameters;

// D = 2 with no hidden layer, so the MADE is one masked linear map and every μ, α is by hand:
//   μ₁ = b₀, α_raw₁ = b₂, μ₂ = W₀₁ u₁ + b₁, α_raw₂ = W₀₃ u₁ + b₃   (columns μ₁ μ₂ α₁ α₂)
void set_hand_weights(AffineAutoregressive& f) {
    nn::Module& made = f.made();
    auto named = made.named_parameters();
    REQUIRE(named.size() == 2);
    Tensor& w = named[0].second->value;  // [2, 4]
    w = Tensor(Shape{2, 4}, {9.0, 0.7, 9.0, -0.4, 9.0, 9.0, 9.0, 9.0});  // the 9s are masked out
    named[1].second->value = Tensor{0.5, -0.2, 0.3, 0.2};
    f.scale().value = Tensor{1.0, 2.0};
}

}  // namespace

TEST_CASE("MAF: the inverse (density) and forward (sampling) by hand, D = 2") {
    Rng rng(1);
    MAF maf(2, rng, {.hidden = {}});
    set_hand_weights(maf);
    const double x1 = 1.0, x2 = 2.0;
    const double a1 = std::tanh(0.3), mu1 = 0.5;
    const double a2 = 2 * std::tanh(-0.4 * x1 + 0.2), mu2 = 0.7 * x1 - 0.2;
    const Transformed z = maf.inverse(Var(Tensor{{x1, x2}}));
    CHECK(std::abs(z.value.value()[0] - (x1 - mu1) * std::exp(-a1)) <= 1e-15);
    CHECK(std::abs(z.value.value()[1] - (x2 - mu2) * std::exp(-a2)) <= 1e-15);
    CHECK(std::abs(z.log_abs_det_jacobian.item() + (a1 + a2)) <= 1e-15);
    // Forward from that z gives x back, with log-det Σ α at x.
    const Transformed x = maf.forward(z.value);
    CHECK(std::abs(x.value.value()[0] - x1) <= 1e-15);
    CHECK(std::abs(x.value.value()[1] - x2) <= 1e-15);
    CHECK(std::abs(x.log_abs_det_jacobian.item() - (a1 + a2)) <= 1e-15);
    CHECK(maf.name() == "MAF(D = 2, MADE(2 → 2×2))");
}

TEST_CASE("IAF: the forward (sampling) and inverse (density) by hand, D = 2") {
    Rng rng(2);
    IAF iaf(2, rng, {.hidden = {}});
    set_hand_weights(iaf);
    const double z1 = -0.6, z2 = 1.5;
    const double a1 = std::tanh(0.3), mu1 = 0.5;
    const double a2 = 2 * std::tanh(-0.4 * z1 + 0.2), mu2 = 0.7 * z1 - 0.2;
    const Transformed x = iaf.forward(Var(Tensor{{z1, z2}}));
    CHECK(std::abs(x.value.value()[0] - (z1 * std::exp(a1) + mu1)) <= 1e-15);
    CHECK(std::abs(x.value.value()[1] - (z2 * std::exp(a2) + mu2)) <= 1e-15);
    CHECK(std::abs(x.log_abs_det_jacobian.item() - (a1 + a2)) <= 1e-15);
    const Transformed z = iaf.inverse(x.value);
    CHECK(std::abs(z.value.value()[0] - z1) <= 1e-15);
    CHECK(std::abs(z.value.value()[1] - z2) <= 1e-14);
    CHECK(std::abs(z.log_abs_det_jacobian.item() + (a1 + a2)) <= 1e-15);
    CHECK(iaf.name() == "IAF(D = 2, MADE(2 → 2×2))");
}

TEST_CASE("MAF density is one MADE pass and sampling D passes; IAF the reverse") {
    const std::size_t d = 5;
    Rng rng(3);
    MAF maf(d, rng, {.hidden = {8}});
    IAF iaf(d, rng, {.hidden = {8}});
    const Var batch(randn(Shape{7, d}, rng));
    NoGrad no_grad;
    for (AffineAutoregressive* f : {static_cast<AffineAutoregressive*>(&maf), static_cast<AffineAutoregressive*>(&iaf)}) {
        const bool is_maf = f->kind() == AffineAutoregressive::Kind::maf;
        std::size_t before = f->made().calls();
        f->inverse(batch);
        CHECK(f->made().calls() - before == (is_maf ? 1 : d));
        before = f->made().calls();
        f->forward(batch);
        CHECK(f->made().calls() - before == (is_maf ? d : 1));
    }
}

TEST_CASE("MAF and IAF: the autodiff Jacobian of each direction is exactly lower triangular") {
    const std::size_t d = 4;
    Rng rng(4);
    for (const auto kind : {AffineAutoregressive::Kind::maf, AffineAutoregressive::Kind::iaf}) {
        AffineAutoregressive f(kind, d, rng, {.hidden = {12, 12}, .activation = nn::Activation::tanh});
        randomize_parameters(f, rng, 0.4);
        const Tensor z = randn(Shape{1, d}, rng);
        for (const bool inverse : {false, true}) {
            const Tensor J = jacobian([&](const Var& v) { return inverse ? f.inverse(v).value : f.forward(v).value; }, z);
            for (std::size_t i = 0; i < d; ++i)
                for (std::size_t j = i + 1; j < d; ++j) CHECK_MESSAGE(J[i * d + j] == 0.0, f.name() << " J[" << i << ", " << j << "]");
            for (std::size_t i = 1; i < d; ++i) CHECK(J[i * d] != 0.0);  // and the lower part is there
        }
    }
}

TEST_CASE("MAF and IAF pass the conformance kit (gradcheck on all points), in D = 2, 3, 5, and in a stack") {
    // (D = 1 without a context is a constant affine map whose MADE weights are all masked: Affine.)
    for (const std::size_t d : {2, 3, 5}) {
        CAPTURE(d);
        Rng rng(10 + d);
        const Tensor points = randn(Shape{6, d}, rng);
        ConformanceOptions o;
        o.gradcheck_points = ConformanceOptions::all;
        o.mc_samples = 5000;
        o.gradcheck_at = Tensor::full(Shape{1, d}, 3.5);  // a tail
        MAF maf(d, rng, {.hidden = {8, 8}, .activation = nn::Activation::tanh});
        randomize_parameters(maf, rng, 0.3);
        CHECK_BIJECTOR(maf, points, o);
        IAF iaf(d, rng, {.hidden = {8}});
        randomize_parameters(iaf, rng, 0.3);
        CHECK_BIJECTOR(iaf, points, o);
    }
    // MAF ∘ reverse ∘ MAF: the second sees the coordinates in the other order (Papamakarios Sec. 3).
    Rng rng(20);
    Flow flow(std::make_unique<StandardNormal>(3));
    flow.add(std::make_unique<MAF>(3, rng, AutoregressiveOptions{.hidden = {8}}));
    flow.add(Permutation::reverse(3));
    flow.add(std::make_unique<MAF>(3, rng, AutoregressiveOptions{.hidden = {8}}));
    randomize_parameters(flow, rng, 0.3);
    CHECK_BIJECTOR(flow, randn(Shape{6, 3}, rng), {.mc_samples = 5000});
}

TEST_CASE("AffineAutoregressive: a fresh layer is the identity; bad sizes are named") {
    Rng rng(5);
    MAF maf(2, rng);
    const Tensor x{{0.4, -1.0}};
    const Transformed z = maf.inverse(Var(x));
    CHECK(testing::values(z.value.value()) == testing::values(x));
    CHECK(z.log_abs_det_jacobian.item() == 0.0);
    CHECK(testing::parameter_names(maf).front() == "scale");
    CHECK_THROWS_WITH_AS(MAF(0, rng), doctest::Contains("D must be at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(maf.forward(Var(Tensor{{1.0, 2.0, 3.0}})),
                         doctest::Contains("MAF(D = 2, MADE(2 → 64 → 64 → 2×2))::forward: expects dimension D = 2"),
                         std::invalid_argument);
    IAF conditional(2, rng, {.context_dim = 3});
    CHECK_THROWS_WITH_AS(conditional.forward(Var(x)), doctest::Contains("takes a context of C = 3"), std::invalid_argument);
}
