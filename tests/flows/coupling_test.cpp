#include "flows/coupling.hpp"

#include <cmath>
#include <memory>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/conformance.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

// Random non-zero weights in the conditioner's last layer and a random `scale`: a freshly built
// coupling is the identity, which would test nothing.
void perturb(AffineCoupling& c, Rng& rng, double std = 0.5) {
    auto& mlp = dynamic_cast<nn::MLP&>(c.conditioner());
    nn::Linear& last = mlp.linear(mlp.depth() - 1);
    last.weight().value = randn(last.weight().value.shape(), rng, 0.0, std);
    last.bias()->value = randn(last.bias()->value.shape(), rng, 0.0, std);
    c.scale().value = rand(c.scale().value.shape(), rng, 0.5, 1.5);
}

std::unique_ptr<AffineCoupling> coupling(const Tensor& mask, std::uint64_t seed,
                                         nn::Activation act = nn::Activation::tanh, std::vector<std::size_t> hidden = {8, 8}) {
    Rng rng(seed);
    auto c = std::make_unique<AffineCoupling>(mask, hidden, rng, act);
    perturb(*c, rng);
    return c;
}

// A random 0/1 mask of length D with at least one of each.
Tensor random_mask(std::size_t d, Rng& rng) {
    while (true) {
        Tensor m(Shape{d});
        double ones = 0;
        for (std::size_t j = 0; j < d; ++j) ones += (m[j] = rng.uniform() < 0.5 ? 1.0 : 0.0);
        if (ones > 0 && ones < static_cast<double>(d)) return m;
    }
}

// A layer with the wrong output width, to test the conditioner shape check.
class Narrow : public nn::Layer {
public:
    Var forward(const Var& x) override { return x; }  // [N, D] instead of [N, 2D]
    std::string name() const override { return "Narrow"; }
};

}  // namespace

TEST_CASE("alternating_mask: alternate entries, complementary parities") {
    CHECK(equal(alternating_mask(2, 0), Tensor{1, 0}));
    CHECK(equal(alternating_mask(2, 1), Tensor{0, 1}));
    CHECK(equal(alternating_mask(5, 0), Tensor{1, 0, 1, 0, 1}));
    CHECK(equal(alternating_mask(5, 1), Tensor{0, 1, 0, 1, 0}));
    CHECK_THROWS_WITH_AS(alternating_mask(1, 0), doctest::Contains("D ≥ 2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(alternating_mask(4, 2), doctest::Contains("parity must be 0 or 1, got 2"), std::invalid_argument);
}

TEST_CASE("checkerboard_mask: b = 1 where row + col is odd, then the complement") {
    // 2 × 3, row-major: row 0 = [0 1 0], row 1 = [1 0 1].
    CHECK(equal(checkerboard_mask(2, 3, 0), Tensor{0, 1, 0, 1, 0, 1}));
    CHECK(equal(checkerboard_mask(2, 3, 1), Tensor{1, 0, 1, 0, 1, 0}));
    // 3 × 2: rows [0 1], [1 0], [0 1].
    CHECK(equal(checkerboard_mask(3, 2, 0), Tensor{0, 1, 1, 0, 0, 1}));
    const Tensor m = checkerboard_mask(4, 4, 0);
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 4; ++c) CHECK(m[r * 4 + c] == static_cast<double>((r + c) % 2));
    CHECK_THROWS_WITH_AS(checkerboard_mask(1, 1, 0), doctest::Contains("fewer than 2 pixels"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(checkerboard_mask(2, 2, 3), doctest::Contains("parity"), std::invalid_argument);
}

TEST_CASE("require_mask: 0/1 entries, a vector, not all equal") {
    CHECK_NOTHROW(require_mask(Tensor{0, 1, 1}, "test"));
    CHECK_THROWS_WITH_AS(require_mask(Tensor{1, 0.5}, "test"), doctest::Contains("test: mask entries must be 0 or 1, but entry 1 is 0.5"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(require_mask(Tensor{1, 1, 1}, "test"), doctest::Contains("it is all 1s"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(require_mask(Tensor{0, 0}, "test"), doctest::Contains("it is all 0s"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(require_mask(Tensor{{1, 0}}, "test"), doctest::Contains("vector [D], got shape [1, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(require_mask(Tensor{NAN, 1}, "test"), doctest::Contains("entry 0 is nan"), std::invalid_argument);
}

TEST_CASE("AffineCoupling: construction, names and errors") {
    Rng rng(1);
    AffineCoupling c(alternating_mask(2, 0), {16, 16}, rng);
    CHECK(c.dim() == 2);
    CHECK(c.name() == "AffineCoupling(D = 2, mask [1, 0])");
    const auto named = c.named_parameters();
    REQUIRE(named.size() == 7);
    CHECK(named[0].first == "scale");
    CHECK(named[1].first == "conditioner.0.weight");
    CHECK(named[6].first == "conditioner.4.bias");
    CHECK(named[5].second->shape() == Shape{16, 4});  // 16 → 2D
    CHECK(equal(c.scale().value, Tensor{1, 1}));       // scale starts at 1
    CHECK(c.conditioner().name() == "MLP(2 → 16 → 16 → 4, relu)");

    CHECK_THROWS_WITH_AS(AffineCoupling(Tensor{1, 1}, {8}, rng), doctest::Contains("AffineCoupling: the mask must contain both"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(AffineCoupling(Tensor{1, 0}, std::unique_ptr<nn::Layer>()), doctest::Contains("conditioner is null"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(AffineCoupling(Tensor{1, 0}, std::make_unique<nn::MLP>(std::vector<std::size_t>{2, 8, 2}, rng)),
                         doctest::Contains("must map D = 2 inputs to 2D = 4 outputs"), std::invalid_argument);
    AffineCoupling narrow(Tensor{1, 0, 1}, std::make_unique<Narrow>());
    CHECK_THROWS_WITH_AS(narrow.forward(Var(Tensor{{1, 2, 3}})), doctest::Contains("must return [N, 2D] = [1, 6] (s_raw and t), got [1, 3]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(c.inverse(Var(Tensor{{1, 2, 3}})), doctest::Contains("AffineCoupling::inverse: expects dimension D = 2"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(c.forward(Var(Tensor{1, 2})), doctest::Contains("AffineCoupling::forward"), std::invalid_argument);

    AffineCoupling wide(checkerboard_mask(8, 8, 0), {4}, rng);
    CHECK(wide.name() == "AffineCoupling(D = 64, mask with 32 of 64 copied)");
}

TEST_CASE("AffineCoupling: a new coupling is exactly the identity (zero-initialized last layer)") {
    Rng rng(2);
    AffineCoupling c(alternating_mask(3, 1), {8, 8}, rng);
    const Tensor x = randn(Shape{5, 3}, rng);
    for (const bool inv : {false, true}) {
        const Transformed t = inv ? c.inverse(Var(x)) : c.forward(Var(x));
        CHECK(equal(t.value.value(), x));
        CHECK(equal(t.log_abs_det_jacobian.value(), Tensor::zeros(Shape{5})));
    }
}

TEST_CASE("AffineCoupling: inverse is the paper's formula z = b⊙x + (1−b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x))") {
    const Tensor b{1, 0, 0, 1};
    auto c = coupling(b, 3);
    Rng rng(30);
    const Tensor x = randn(Shape{6, 4}, rng);
    // s and t from the conditioner by hand, on b ⊙ x.
    NoGrad no_grad;
    const Tensor out = c->conditioner()(Var(x * b)).value();
    const Transformed z = c->inverse(Var(x));
    const Transformed back = c->forward(z.value);
    for (std::size_t i = 0; i < 6; ++i) {
        double log_det = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const double s = c->scale().value[j] * std::tanh(out.at({i, j})), t = out.at({i, 4 + j});
            const double expected = b[j] * x.at({i, j}) + (1 - b[j]) * (x.at({i, j}) * std::exp(s) + t);
            CHECK(std::abs(z.value.value().at({i, j}) - expected) <= 1e-14 * std::max(1.0, std::abs(expected)));
            log_det += (1 - b[j]) * s;
            // The copied coordinates pass through bit for bit, both ways.
            if (b[j] == 1) {
                CHECK(z.value.value().at({i, j}) == x.at({i, j}));
                CHECK(back.value.value().at({i, j}) == x.at({i, j}));
            }
        }
        CHECK(std::abs(z.log_abs_det_jacobian.value()[i] - log_det) <= 1e-14);
        CHECK(std::abs(back.log_abs_det_jacobian.value()[i] + log_det) <= 1e-14);
    }
    CHECK(max_abs_diff(back.value.value(), x) <= 1e-13);
}

TEST_CASE("AffineCoupling: the log-scale is bounded by |scale| (s = scale ⊙ tanh)") {
    auto c = coupling(Tensor{0, 1}, 4);
    Rng rng(40);
    c->scale().value = Tensor{0.3, 7.0};  // the copied coordinate's scale is never used
    auto& mlp = dynamic_cast<nn::MLP&>(c->conditioner());
    mlp.linear(mlp.depth() - 1).weight().value *= 100.0;  // saturate tanh
    NoGrad no_grad;
    const auto st = c->scale_shift(Var(randn(Shape{50, 2}, rng, 0.0, 10.0)));
    for (std::size_t i = 0; i < 50; ++i) {
        CHECK(std::abs(st.s.value().at({i, 0})) <= 0.3);
        CHECK(st.s.value().at({i, 1}) == 0.0);  // copied: s = t = 0
        CHECK(st.t.value().at({i, 1}) == 0.0);
    }
}

TEST_CASE("AffineCoupling: the Jacobian is triangular with diagonal exp(s)") {
    const Tensor b{0, 1, 0};
    auto c = coupling(b, 5);
    Rng rng(50);
    const Tensor x = randn(Shape{1, 3}, rng);
    const Tensor J = jacobian([&](const Var& v) { return c->inverse(v).value; }, x);  // ∂z/∂x
    NoGrad no_grad;
    const Tensor s = c->scale_shift(Var(x)).s.value();
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t k = 0; k < 3; ++k) {
            const double v = J.at({i, k});
            if (i == k) CHECK(std::abs(v - std::exp(s[i])) <= 1e-13);  // 1 on the copied coordinate (s = 0)
            // A copied output depends only on its own input; an updated one on itself and the copied ones.
            else if (b[i] == 1 || b[k] == 0) CHECK(v == 0.0);
        }
    CHECK(J.at({0, 1}) != 0.0);  // the updated coordinates do depend on the copied one
    CHECK(std::abs(slogdet(J).log_abs_det - c->inverse(Var(x)).log_abs_det_jacobian.item()) <= 1e-13);
}

TEST_CASE("AffineCoupling: conformance in D = 2, 3, 6 with alternating, checkerboard and random masks") {
    Rng rng(6);
    struct Case {
        Tensor mask;
        nn::Activation act;
    };
    const Case cases[] = {
        {alternating_mask(2, 0), nn::Activation::tanh}, {alternating_mask(2, 1), nn::Activation::relu},
        {alternating_mask(3, 0), nn::Activation::tanh}, {random_mask(3, rng), nn::Activation::tanh},
        {checkerboard_mask(2, 3, 1), nn::Activation::tanh}, {random_mask(6, rng), nn::Activation::softplus},
    };
    std::uint64_t seed = 60;
    for (const Case& k : cases) {
        const std::size_t d = k.mask.numel();
        CAPTURE(d);
        auto c = coupling(k.mask, ++seed, k.act);
        const Tensor z = randn(Shape{24, d}, rng);
        CHECK_BIJECTOR(*c, z, {.mc_samples = 10000});
    }
}

TEST_CASE("AffineCoupling: gradcheck of log p through a coupling, in x and every parameter") {
    auto c = coupling(Tensor{1, 0, 1}, 7);
    Rng rng(70);
    const Tensor x = randn(Shape{4, 3}, rng);
    // The maximum-likelihood loss of one coupling on a standard normal base.
    const auto nll = [&](const std::vector<Var>& in) {
        const Transformed z = c->inverse(in[0]);
        return mean(0.5 * sum(square(z.value), 1) - z.log_abs_det_jacobian);
    };
    const GradcheckResult r = gradcheck(nll, {x}, {.parameters = c->parameters()});
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("AffineCoupling: two couplings with alternating masks move every coordinate") {
    Rng rng(8);
    auto first = coupling(alternating_mask(4, 0), 80);
    auto second = coupling(alternating_mask(4, 1), 81);
    const Tensor x = randn(Shape{10, 4}, rng);
    NoGrad no_grad;
    const Tensor one = first->inverse(Var(x)).value.value();
    const Tensor two = second->inverse(Var(one)).value.value();
    for (std::size_t i = 0; i < 10; ++i)
        for (std::size_t j = 0; j < 4; ++j) {
            CHECK((one.at({i, j}) == x.at({i, j})) == (j % 2 == 0));  // one layer copies half exactly
            CHECK(two.at({i, j}) != x.at({i, j}));                    // two layers change all
        }
}

TEST_CASE("AffineCoupling with a context: the conditioner reads (b ⊙ x, c); conformance at fixed contexts") {
    Rng rng(40);
    AffineCoupling c(alternating_mask(3, 0), {8}, rng, nn::Activation::tanh, 2);
    CHECK(c.context_dim() == 2);
    CHECK(c.name() == "AffineCoupling(D = 3, mask [1, 0, 1], context C = 2)");
    for (Parameter* p : c.parameters()) p->value = randn(p->value.shape(), rng, 0.0, 0.4);
    const Tensor contexts(Shape{2, 2}, {0.5, -1.0, 2.0, 0.3});
    CHECK_CONDITIONAL_BIJECTOR(c, randn(Shape{5, 3}, rng), contexts, {.mc_samples = 5000});
    // By hand at one point: the conditioner's output at (b ⊙ x, c) gives s and t as without a context.
    const Tensor x{{0.3, -0.8, 1.1}};
    const Tensor ctx{{0.5, -1.0}};
    NoGrad no_grad;
    const Tensor out = c.conditioner()(Var(Tensor{{0.3, 0.0, 1.1, 0.5, -1.0}})).value();  // [1, 6]: s_raw, t
    const Tensor z = c.inverse(Var(x), Var(ctx)).value.value();
    const double s1 = c.scale().value[1] * std::tanh(out[1]);
    CHECK(z[0] == 0.3);
    CHECK(std::abs(z[1] - (-0.8 * std::exp(s1) + out[4])) <= 1e-15);
    // Another context, another map; without one, an error that names it.
    CHECK(c.inverse(Var(x), Var(Tensor{{2.0, 0.3}})).value.value()[1] != z[1]);
    CHECK_THROWS_WITH_AS(c.inverse(Var(x)), doctest::Contains("takes a context of C = 2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(AffineCoupling(alternating_mask(2, 0), make_coupling_conditioner(2, {4}, rng), 1),
                         doctest::Contains("must map D + C = 2 + 1 = 3 inputs to 2D = 4 outputs"), std::invalid_argument);
}
