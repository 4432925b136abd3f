// The custom-op API (autograd/op.hpp): any number of inputs, rules that capture state (destroyed at
// clear), the several-outputs pattern, the map helpers, concat as one node, and no arena growth once
// a step's size is reached.
#include "autograd/op.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

// Σ_k c_k · x_k over any number of inputs, with the weights c captured by the rule.
Var weighted_total(const std::vector<Var>& xs, std::vector<double> c) {
    Tensor value = Tensor::zeros(xs.front().shape());
    for (std::size_t k = 0; k < xs.size(); ++k) value = tapeflow::add(value, xs[k].value() * c[k]);
    return record("weighted_total", std::move(value), xs, [c = std::move(c)](Backward& ctx) {
        for (std::size_t k = 0; k < ctx.n_inputs(); ++k)
            if (ctx.needs_grad(k)) ctx.accumulate(k, ctx.grad() * c[k]);
    });
}

// sin x and cos x from one node: the outputs joined along a new last axis, then split into views.
std::vector<Var> sincos(const Var& x) {
    const Tensor s = map(x.value(), [](double v) { return std::sin(v); });
    const Tensor c = map(x.value(), [](double v) { return std::cos(v); });
    const Shape column = tapeflow::unsqueeze(s, -1).shape();
    const Var both = record("sincos", tapeflow::concat({s.reshape(column), c.reshape(column)}, -1), {x},
                            [](Backward& ctx) {
                                // d/dx (sin, cos) = (cos, −sin), read from the joined output itself.
                                const Tensor& g = ctx.grad();
                                const Tensor& y = ctx.value();
                                Tensor dx(ctx.input(0).shape());
                                for (std::size_t i = 0; i < dx.numel(); ++i)
                                    dx[i] = g[2 * i] * y[2 * i + 1] - g[2 * i + 1] * y[2 * i];
                                ctx.accumulate(0, std::move(dx));
                            });
    std::vector<Var> parts = split(both, -1, {1, 1});
    return {squeeze(parts[0], -1), squeeze(parts[1], -1)};
}

}  // namespace

TEST_CASE("record takes any number of inputs and a rule with captured state") {
    Rng rng(1);
    std::vector<Tensor> xs;
    for (int k = 0; k < 7; ++k) xs.push_back(randn({2, 3}, rng));
    const std::vector<double> c{1, -2, 3, -4, 5, -6, 7};
    CHECK_GRADCHECK([&c](const Vars& v) { return sum(square(weighted_total(v, c))); }, xs);
    Tape tape;
    TapeScope scope(tape);
    std::vector<Var> vars;
    for (const Tensor& x : xs) vars.push_back(tape.variable(x));
    vars[3] = Var(xs[3]);  // a constant among them: no gradient, and the rule skips it
    tape.backward(sum(weighted_total(vars, c)));
    CHECK(equal(vars[6].grad(), Tensor::full({2, 3}, 7.0)));
    CHECK(equal(vars[1].grad(), Tensor::full({2, 3}, -2.0)));
}

TEST_CASE("a rule's captures live until tape.clear() and are destroyed then") {
    auto token = std::make_shared<int>(42);
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    double seen = 0;
    const Var y = record("keeps", x.value().clone(), {x}, [token, &seen](Backward& ctx) {
        seen = *token;
        ctx.accumulate(0, ctx.grad());
    });
    CHECK(token.use_count() == 2);  // one copy, in the tape's arena
    tape.backward(sum(y));
    CHECK(seen == 42);
    CHECK(equal(x.grad(), Tensor{1.0, 1.0}));
    tape.clear();
    CHECK(token.use_count() == 1);
    {
        Tape scoped;
        const Var z = scoped.variable(Tensor{1.0});
        (void)record("keeps", z.value().clone(), {z}, [token](Backward&) {});
        CHECK(token.use_count() == 2);
    }
    CHECK(token.use_count() == 1);  // and when the tape goes
}

TEST_CASE("no_grad and constant inputs record nothing and keep no captures") {
    auto token = std::make_shared<int>(0);
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0});
    {
        NoGrad no_grad;
        CHECK_FALSE(record("op", Tensor{2.0}, {x}, [token](Backward&) {}).requires_grad());
    }
    const Var constant(Tensor{1.0});
    CHECK_FALSE(record("op", Tensor{2.0}, {constant}, [token](Backward&) {}).requires_grad());
    CHECK(token.use_count() == 1);
    CHECK(tape.size() == 1);
}

TEST_CASE("several outputs: one node, split into views, gradients from both") {
    Rng rng(2);
    CHECK_GRADCHECK([](const Vars& v) {
        const std::vector<Var> sc = sincos(v[0]);
        return sum(sc[0] * Var(Tensor{1.0, 2.0, 3.0}) + square(sc[1]));
    }, {randn({3}, rng)});
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.3, -1.2});
    const std::vector<Var> sc = sincos(x);
    CHECK(allclose(sc[0].value(), tapeflow::sin(x.value())));
    CHECK(allclose(sc[1].value(), tapeflow::cos(x.value())));
}

TEST_CASE("map applies a function elementwise, with broadcasting for two and three tensors") {
    const Tensor a{1.0, 2.0};
    CHECK(equal(map(a, [](double v) { return v * v; }), Tensor{1.0, 4.0}));
    CHECK(equal(map(Tensor(Shape{2, 1}, {1.0, 2.0}), a, [](double u, double v) { return u * 10 + v; }),
                Tensor{{11.0, 12.0}, {21.0, 22.0}}));
    CHECK(equal(map(a, a, Tensor::scalar(1.0), [](double u, double v, double w) { return u + v + w; }), Tensor{3.0, 5.0}));
    CHECK_THROWS_WITH_AS(map(a, Tensor{1.0, 2.0, 3.0}, [](double u, double) { return u; }, "my_op"),
                         doctest::Contains("my_op"), std::invalid_argument);
}

TEST_CASE("concat of k parts is one node, with each part's slice of the gradient") {
    Tape tape;
    TapeScope scope(tape);
    std::vector<Var> parts;
    for (int k = 0; k < 6; ++k) parts.push_back(tape.variable(Tensor::full({2, 1}, k)));
    const std::size_t before = tape.size();
    const Var joined = concat(parts, 1);
    CHECK(tape.size() == before + 1);
    tape.backward(sum(joined * Var(Tensor{{0.0, 1.0, 2.0, 3.0, 4.0, 5.0}, {0.0, 10.0, 20.0, 30.0, 40.0, 50.0}})));
    CHECK(equal(parts[4].grad(), Tensor(Shape{2, 1}, {4.0, 40.0})));
}

TEST_CASE("recording a step again reuses the arena: no growth after the first step") {
    Tape tape;
    TapeScope scope(tape);
    std::size_t first = 0;
    for (int step = 0; step < 3; ++step) {
        const Var x = tape.variable(Tensor{1.0, 2.0, 3.0});
        Var y = x;
        for (int i = 0; i < 2000; ++i) y = pow(y * 1.0001, 1.0) + 0.5;  // rules that capture a double
        tape.backward(sum(y));
        if (step == 0) first = tape.bytes();
        CHECK(tape.bytes() == first);
        tape.clear();
    }
}
