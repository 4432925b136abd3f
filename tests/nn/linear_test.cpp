#include "nn/linear.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// y_nj = b_j + Σ_i x_ni W_ij, by the textbook loop.
Tensor affine_reference(const Tensor& x, const Tensor& w, const Tensor* b) {
    const std::size_t n = x.shape()[0], in = w.shape()[0], out = w.shape()[1];
    Tensor y = Tensor::zeros(Shape{n, out});
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < out; ++j) {
            double s = b ? (*b)[j] : 0.0;
            for (std::size_t i = 0; i < in; ++i) s += x[r * in + i] * w[i * out + j];
            y[r * out + j] = s;
        }
    return y;
}

}  // namespace

TEST_CASE("Linear computes x·W + b with W stored [in, out]") {
    Rng rng(1);
    Linear layer(3, 5, rng);
    CHECK(layer.weight().shape() == Shape{3, 5});
    REQUIRE(layer.bias() != nullptr);
    CHECK(layer.bias()->shape() == Shape{5});
    const Tensor x = randn(Shape{7, 3}, rng);
    NoGrad no_grad;
    const Tensor y = layer(Var(x)).value();
    CHECK(max_abs_diff(y, affine_reference(x, layer.weight().value, &layer.bias()->value)) <= 1e-14);
}

TEST_CASE("Linear names its parameters weight and bias; bias = false leaves the bias out") {
    Rng rng(1);
    Linear with(2, 64, rng);
    Linear without(2, 64, rng, {.bias = false});
    std::vector<std::string> names;
    for (const auto& [name, p] : with.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"weight", "bias"});
    CHECK(without.named_parameters().size() == 1);
    CHECK(without.bias() == nullptr);
    CHECK(with.name() == "Linear(2 → 64)");
    CHECK(without.name() == "Linear(2 → 64, bias=false)");
    CHECK(with.parameter_count() == 2 * 64 + 64);
}

TEST_CASE("Linear's default initialization is PyTorch's: weight and bias in U(±1/√in)") {
    Rng rng(3);
    Linear layer(16, 200, rng);
    const double bound = 0.25;
    double largest_w = 0, largest_b = 0;
    for (const double v : layer.weight().value.span()) largest_w = std::max(largest_w, std::abs(v));
    for (const double v : layer.bias()->value.span()) largest_b = std::max(largest_b, std::abs(v));
    CHECK(largest_w < bound);
    CHECK(largest_w > 0.99 * bound);
    CHECK(largest_b < bound);
    CHECK(largest_b > 0.9 * bound);
}

TEST_CASE("Linear draws the weight then the bias: the same seed gives the same layer") {
    Rng a(9), b(9);
    Linear la(4, 3, a, {.init = Init::xavier_normal(), .bias_init = Init::normal(0.5)});
    Linear lb(4, 3, b, {.init = Init::xavier_normal(), .bias_init = Init::normal(0.5)});
    CHECK(equal(la.weight().value, lb.weight().value));
    CHECK(equal(la.bias()->value, lb.bias()->value));
    Rng c(9);
    CHECK(equal(la.weight().value, xavier_normal(Shape{4, 3}, 4, 3, c)));
    CHECK(equal(la.bias()->value, normal(Shape{3}, 0.5, c)));
    Rng d(9);
    Linear zero_bias(4, 3, d, {.bias_init = Init::zeros()});
    CHECK(equal(zero_bias.bias()->value, Tensor::zeros(Shape{3})));
}

TEST_CASE("Linear accepts any number of leading axes") {
    Rng rng(2);
    Linear layer(3, 2, rng);
    NoGrad no_grad;
    const Tensor x = randn(Shape{2, 4, 3}, rng);
    const Tensor y = layer(Var(x)).value();
    REQUIRE(y.shape() == Shape{2, 4, 2});
    const Tensor rows = affine_reference(x.reshape(Shape{8, 3}), layer.weight().value, &layer.bias()->value);
    CHECK(max_abs_diff(y.reshape(Shape{8, 2}), rows) <= 1e-14);
    const Tensor single = layer(Var(Tensor{0.5, -1.0, 2.0})).value();
    CHECK(single.shape() == Shape{2});
}

TEST_CASE("Linear's gradients match finite differences, for the input and the parameters") {
    Rng rng(4);
    Linear layer(3, 4, rng);
    const Tensor x = randn(Shape{5, 3}, rng);
    auto f = [&](const std::vector<Var>& v) { return layer(v[0]); };
    const GradcheckResult r = gradcheck(f, {x}, {.parameters = layer.parameters()});
    CHECK_MESSAGE(r.ok, r.report);

    Linear no_bias(3, 2, rng, {.bias = false});
    const GradcheckResult r2 = gradcheck([&](const std::vector<Var>& v) { return no_bias(v[0]); },
                                         {randn(Shape{2, 2, 3}, rng)}, {.parameters = no_bias.parameters()});
    CHECK_MESSAGE(r2.ok, r2.report);
}

TEST_CASE("the functional linear checks its gradients w.r.t. all three operands") {
    Rng rng(5);
    const GradcheckResult r =
        gradcheck([](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); },
                  {randn(Shape{4, 3}, rng), randn(Shape{3, 2}, rng), randn(Shape{2}, rng)});
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("a Linear step accumulates dW = xᵀ·dy and db = Σ dy into the parameters") {
    Rng rng(6);
    Linear layer(2, 3, rng);
    const Tensor x{{1.0, 2.0}, {-1.0, 0.5}};
    Tape& tape = Tape::current();
    const Var loss = sum(layer(Var(x)));  // dy = 1 everywhere
    tape.backward(loss);
    CHECK(equal(layer.weight().grad, Tensor{{0.0, 0.0, 0.0}, {2.5, 2.5, 2.5}}));
    CHECK(equal(layer.bias()->grad, Tensor{2.0, 2.0, 2.0}));
    // weight, bias, the constant x, one node for the whole affine map, and the sum.
    CHECK(tape.size() == 5);
    tape.clear();
}

TEST_CASE("linear_relu is relu(x·W + b): value and every gradient as the two ops, NaN kept") {
    Rng rng(8);
    const Tensor x = randn(Shape{6, 3}, rng), w = randn(Shape{3, 4}, rng), b = randn(Shape{4}, rng);
    const Tensor dy = randn(Shape{6, 4}, rng);  // an upstream gradient with no symmetry to hide behind
    Tape& tape = Tape::current();
    auto grads = [&](bool fused, bool with_bias) {
        const Var vx = tape.variable(x), vw = tape.variable(w), vb = with_bias ? tape.variable(b) : Var();
        const Var y = fused ? linear_relu(vx, vw, vb) : relu(linear(vx, vw, vb));
        tape.backward(sum(y * Var(dy)));
        std::vector<Tensor> out{y.value().clone(), vx.grad().clone(), vw.grad().clone()};
        if (with_bias) out.push_back(vb.grad().clone());
        tape.clear();
        return out;
    };
    for (const bool with_bias : {true, false}) {
        INFO("bias: " << with_bias);
        const std::vector<Tensor> fused = grads(true, with_bias), split = grads(false, with_bias);
        REQUIRE(fused.size() == split.size());
        for (std::size_t k = 0; k < fused.size(); ++k) CHECK(max_abs_diff(fused[k], split[k]) <= 1e-14);
        // The ReLU cut some entries and kept others, so the mask was exercised both ways.
        CHECK(min(fused[0]).item() == 0.0);
        CHECK(max(fused[0]).item() > 0.0);
    }
    NoGrad no_grad;
    Tensor w_nan = w.clone();
    w_nan[0] = std::nan("");
    const Tensor y = linear_relu(Var(x), Var(w_nan), Var(b)).value();
    for (std::size_t r = 0; r < 6; ++r) CHECK(std::isnan(y[r * 4]));  // column 0 read the NaN weight
}

TEST_CASE("linear_relu's gradients match finite differences w.r.t. all three operands") {
    Rng rng(9);
    // Entries away from the kink at 0, where the ReLU is not differentiable.
    Tensor x = randn(Shape{4, 3}, rng), w = randn(Shape{3, 5}, rng), b = randn(Shape{5}, rng);
    for (std::size_t j = 0; j < 5; ++j) b[j] += b[j] > 0 ? 0.5 : -0.5;
    const GradcheckResult r = gradcheck([](const std::vector<Var>& v) { return linear_relu(v[0], v[1], v[2]); },
                                        {x, w, b});
    CHECK_MESSAGE(r.ok, r.report);
    Linear layer(3, 4, rng);
    const GradcheckResult r2 = gradcheck([&](const std::vector<Var>& v) { return layer.forward_relu(v[0]); },
                                         {randn(Shape{2, 2, 3}, rng)}, {.parameters = layer.parameters()});
    CHECK_MESSAGE(r2.ok, r2.report);
}

TEST_CASE("Linear rejects an input with the wrong number of features, naming the layer and shape") {
    Rng rng(1);
    Linear layer(2, 64, rng);
    CHECK_THROWS_WITH_AS(layer(Var(Tensor::zeros(Shape{5, 3}))),
                         "Linear(2 → 64): input has 3 features, expected 2; input shape [5, 3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(layer(Var(Tensor::scalar(1.0))),
                         "Linear(2 → 64): expected an input of shape [..., 2], got a scalar", std::invalid_argument);
    CHECK_THROWS_WITH_AS(Linear(0, 3, rng), "Linear(0 → 3): both sizes must be positive", std::invalid_argument);
    CHECK_THROWS_WITH_AS(linear(Var(Tensor::zeros(Shape{2, 3})), Var(Tensor::zeros(Shape{2, 3}))),
                         doctest::Contains("linear: expected x [N, in] and weight [in, out], got x [2, 3] and weight [2, 3]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(linear(Var(Tensor::zeros(Shape{2, 3})), Var(Tensor::zeros(Shape{3, 4})), Var(Tensor::zeros(Shape{3}))),
                         doctest::Contains("linear: bias must have shape [4]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(linear_relu(Var(Tensor::zeros(Shape{2, 3})), Var(Tensor::zeros(Shape{2, 3})), Var()),
                         doctest::Contains("linear_relu: expected x [N, in] and weight [in, out]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(layer.forward_relu(Var(Tensor::zeros(Shape{5, 3}))),
                         doctest::Contains("Linear(2 → 64): input has 3 features"), std::invalid_argument);
}

TEST_CASE("linear and linear_relu: J·v by their tangent rules matches central differences, every operand") {
    Rng rng(10);
    const Tensor x = randn(Shape{4, 3}, rng), w = randn(Shape{3, 5}, rng);
    Tensor b = randn(Shape{5}, rng);
    for (std::size_t j = 0; j < 5; ++j) b[j] += b[j] > 0 ? 0.5 : -0.5;  // keeps the ReLU's inputs off its kink
    const Tensor dx = randn(x.shape(), rng), dw = randn(w.shape(), rng), db = randn(b.shape(), rng);
    using Op = Var (*)(const Var&, const Var&, const Var&);
    for (const Op op : {Op{linear}, Op{linear_relu}}) {
        const GradcheckResult with_bias = jvpcheck([op](const std::vector<Var>& v) { return op(v[0], v[1], v[2]); },
                                                   {x, w, b}, {dx, dw, db});
        CHECK_MESSAGE(with_bias.ok, with_bias.report);
        const GradcheckResult without = jvpcheck([op](const std::vector<Var>& v) { return op(v[0], v[1], Var()); },
                                                 {x, w}, {dx, dw});
        CHECK_MESSAGE(without.ok, without.report);
    }
    // The ReLU both cut and kept entries, so its mask was exercised both ways.
    NoGrad no_grad;
    const Tensor y = linear_relu(Var(x), Var(w), Var(b)).value();
    CHECK(min(y).item() == 0.0);
    CHECK(max(y).item() > 0.0);
}
