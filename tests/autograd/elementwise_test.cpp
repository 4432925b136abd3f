// Elementwise Var ops: finite-difference gradchecks of every op (with broadcasting in each argument,
// every branch, and long chains), and forward values identical to the tensor ops'.
//
// Inputs keep away from kinks and poles (as minitorch does): relu(x + 0.5) with |x| < 0.3, log(x + 3),
// abs of values at least 0.25 from 0, min/max of operands that are never within 1e-3 of each other.
#include "autograd/elementwise.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

struct ShapePair {
    Shape a, b;
};

// Broadcasting in each argument: size-1 axes on either side, missing leading axes on either side,
// 0-d against a matrix, and the plain same-shape case.
const std::vector<ShapePair> broadcast_pairs = {
    {{3, 1}, {1, 4}}, {{1, 4}, {3, 1}}, {{4}, {3, 4}},       {{3, 4}, {4}},  {{}, {2, 3}},   {{2, 3}, {}},
    {{1}, {2, 3}},    {{2, 3}, {1}},    {{2, 1, 3}, {4, 1}}, {{1, 1}, {1}}, {{2, 3}, {2, 3}},
};

// The smallest gap between the operands of a broadcast binary op.
double min_gap(const Tensor& a, const Tensor& b) { return tapeflow::min(tapeflow::abs(a - b)).item(); }

}  // namespace

TEST_CASE("binary ops: gradients with broadcasting in each argument") {
    Rng rng(11);
    for (const auto& [sa, sb] : broadcast_pairs) {
        INFO(fmt::format("a {} with b {}", sa, sb));
        const Tensor a = rand(sa, rng, -1, 1);
        const Tensor b = rand(sb, rng, -1, 1);
        const Tensor positive_b = rand(sb, rng, 0.5, 2.0);
        REQUIRE(min_gap(a, b) > 1e-3);  // min and max stay away from their kink

        CHECK_GRADCHECK([](const Vars& v) { return add(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return sub(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return mul(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return div(v[0], v[1]); }, {a, positive_b});
        CHECK_GRADCHECK([](const Vars& v) { return div(v[1], v[0]); }, {positive_b, a});
        CHECK_GRADCHECK([](const Vars& v) { return minimum(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return maximum(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] + v[1]; }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] - v[1]; }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] * v[1]; }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] / v[1]; }, {a, positive_b});
    }
}

TEST_CASE("binary ops: the same values as the tensor ops") {
    Rng rng(12);
    for (const auto& [sa, sb] : broadcast_pairs) {
        INFO(fmt::format("a {} with b {}", sa, sb));
        const Tensor a = rand(sa, rng, -1, 1);
        const Tensor b = rand(sb, rng, 0.5, 2.0);
        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(a);
        const Var y = tape.variable(b);
        CHECK(equal(add(x, y).value(), tapeflow::add(a, b)));
        CHECK(equal(sub(x, y).value(), tapeflow::sub(a, b)));
        CHECK(equal(mul(x, y).value(), tapeflow::mul(a, b)));
        CHECK(equal(div(x, y).value(), tapeflow::div(a, b)));
        CHECK(equal(minimum(x, y).value(), tapeflow::minimum(a, b)));
        CHECK(equal(maximum(x, y).value(), tapeflow::maximum(a, b)));
        CHECK(equal((x + y).value(), a + b));
        CHECK(equal((x - y).value(), a - b));
        CHECK(equal((x * y).value(), a * b));
        CHECK(equal((x / y).value(), a / b));
        // A constant on either side.
        CHECK(equal((x * Var(b)).value(), a * b));
        CHECK(equal((Var(a) - y).value(), a - b));
    }
}

TEST_CASE("the gradient of a constant operand is not needed: only the other side is recorded") {
    Rng rng(13);
    const Tensor c = rand(Shape{3, 1}, rng, 0.5, 2.0);
    CHECK_GRADCHECK([c](const Vars& v) { return v[0] * Var(c); }, {rand(Shape{1, 4}, rng, -1, 1)});
    CHECK_GRADCHECK([c](const Vars& v) { return Var(c) / v[0]; }, {rand(Shape{4}, rng, 0.5, 2.0)});
}

TEST_CASE("minimum and maximum split the gradient evenly on a tie") {
    Tape tape;
    TapeScope scope(tape);
    const Var a = tape.variable(Tensor{1.0, 2.0, 3.0});
    const Var b = tape.variable(Tensor{2.0, 2.0, 2.0});
    tape.backward(sum(minimum(a, b)));
    CHECK(equal(a.grad(), Tensor{1.0, 0.5, 0.0}));
    CHECK(equal(b.grad(), Tensor{0.0, 0.5, 1.0}));
    tape.backward(sum(maximum(a, b)));
    CHECK(equal(a.grad(), Tensor{0.0, 0.5, 1.0}));
    CHECK(equal(b.grad(), Tensor{1.0, 0.5, 0.0}));
}

TEST_CASE("scalar operator overloads with the double on either side") {
    Rng rng(14);
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{2, 3}}) {
        INFO(fmt::format("shape {}", shape));
        const Tensor a = rand(shape, rng, -1, 1);
        const Tensor p = rand(shape, rng, 0.5, 2.0);
        CHECK_GRADCHECK([](const Vars& v) { return v[0] + 2.5; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return 2.5 + v[0]; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] - 2.5; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return 2.5 - v[0]; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] * -1.5; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return -1.5 * v[0]; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return v[0] / 3.0; }, {a});
        CHECK_GRADCHECK([](const Vars& v) { return 3.0 / v[0]; }, {p});
        CHECK_GRADCHECK([](const Vars& v) { return -v[0]; }, {a});

        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(a);
        for (const double s : {2.5, 3.0, 0.7, -1e-3}) {
            INFO("s = " << s);
            CHECK(equal((x + s).value(), a + s));
            CHECK(equal((s + x).value(), s + a));
            CHECK(equal((x - s).value(), a - s));
            CHECK(equal((s - x).value(), s - a));
            CHECK(equal((x * s).value(), a * s));
            CHECK(equal((s * x).value(), s * a));
            CHECK(equal((x / s).value(), a / s));
            CHECK(equal((s / x).value(), s / a));
        }
        CHECK(equal((-x).value(), -a));
    }
}

TEST_CASE("unary ops: gradients inside each op's smooth region") {
    Rng rng(15);
    for (const Shape& shape : {Shape{}, Shape{1}, Shape{2, 3}}) {
        INFO(fmt::format("shape {}", shape));
        const Tensor x = rand(shape, rng, -1, 1);
        const Tensor small = rand(shape, rng, -0.3, 0.3);
        CHECK_GRADCHECK([](const Vars& v) { return neg(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return exp(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return log(v[0] + 3.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return log1p(v[0] * 0.5); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return expm1(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return sqrt(v[0] + 2.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return square(v[0]); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return pow(v[0] + 2.0, 2.5); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return pow(v[0] + 2.0, -1.5); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return pow(v[0], 3.0); }, {x});  // negative bases, integer power
        CHECK_GRADCHECK([](const Vars& v) { return pow(v[0], 1.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return sin(v[0] * 2.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return cos(v[0] * 2.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return tanh(v[0] * 2.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return sigmoid(v[0] * 3.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return softplus(v[0] * 3.0); }, {x});
        CHECK_GRADCHECK([](const Vars& v) { return log_sigmoid(v[0] * 3.0); }, {x});
        // Both branches of the kinked ops.
        CHECK_GRADCHECK([](const Vars& v) { return relu(v[0] + 0.5); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return relu(v[0] - 0.5); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return leaky_relu(v[0] + 0.5, 0.2); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return leaky_relu(v[0] - 0.5, 0.2); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return leaky_relu(v[0] - 0.5); }, {small});  // default slope 0.01
        CHECK_GRADCHECK([](const Vars& v) { return abs(v[0] + 0.5); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return abs(v[0] - 0.5); }, {small});
        CHECK_GRADCHECK([](const Vars& v) { return clamp(v[0], -1.5, 1.5); }, {x});        // inside
        CHECK_GRADCHECK([](const Vars& v) { return clamp(v[0] + 2.0, -1.5, 0.5); }, {x});  // above
        CHECK_GRADCHECK([](const Vars& v) { return clamp(v[0] - 2.0, -0.5, 1.5); }, {x});  // below
    }
}

TEST_CASE("kinked ops: the gradient on each side of the kink") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{-2.0, -0.5, 0.5, 2.0});
    tape.backward(sum(relu(x)));
    CHECK(equal(x.grad(), Tensor{0.0, 0.0, 1.0, 1.0}));
    tape.backward(sum(leaky_relu(x, 0.25)));
    CHECK(equal(x.grad(), Tensor{0.25, 0.25, 1.0, 1.0}));
    tape.backward(sum(abs(x)));
    CHECK(equal(x.grad(), Tensor{-1.0, -1.0, 1.0, 1.0}));
    tape.backward(sum(clamp(x, -1.0, 1.0)));
    CHECK(equal(x.grad(), Tensor{0.0, 1.0, 1.0, 0.0}));
    CHECK_THROWS_WITH_AS(clamp(x, 1.0, -1.0), doctest::Contains("clamp"), std::invalid_argument);
}

TEST_CASE("softplus and log_sigmoid stay finite and exact for large |x|") {
    const Tensor x{-30.0, -5.0, -0.3, 0.3, 5.0, 30.0};
    CHECK_GRADCHECK([](const Vars& v) { return softplus(v[0]); }, {x});
    CHECK_GRADCHECK([](const Vars& v) { return log_sigmoid(v[0]); }, {x});
    CHECK_GRADCHECK([](const Vars& v) { return sigmoid(v[0]); }, {x});

    Tape tape;
    TapeScope scope(tape);
    const Var big = tape.variable(Tensor{-800.0, 800.0});
    const Var ls = log_sigmoid(big);
    CHECK(equal(ls.value(), Tensor{-800.0, 0.0}));
    tape.backward(sum(ls));
    CHECK(equal(big.grad(), Tensor{1.0, 0.0}));  // σ(800) = 1 and σ(−800) underflows to 0, no NaN
    const Var sp = softplus(big);
    CHECK(equal(sp.value(), Tensor{0.0, 800.0}));
    tape.backward(sum(sp));
    CHECK(equal(big.grad(), Tensor{0.0, 1.0}));
}

TEST_CASE("unary ops: the same values as the tensor ops") {
    Rng rng(16);
    const Tensor a = rand(Shape{2, 3}, rng, 0.1, 2.0);
    const Tensor s = rand(Shape{2, 3}, rng, -2.0, 2.0);
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(a);
    const Var y = tape.variable(s);
    CHECK(equal(neg(y).value(), tapeflow::neg(s)));
    CHECK(equal(exp(y).value(), tapeflow::exp(s)));
    CHECK(equal(log(x).value(), tapeflow::log(a)));
    CHECK(equal(log1p(x).value(), tapeflow::log1p(a)));
    CHECK(equal(expm1(y).value(), tapeflow::expm1(s)));
    CHECK(equal(sqrt(x).value(), tapeflow::sqrt(a)));
    CHECK(equal(square(y).value(), tapeflow::square(s)));
    CHECK(equal(pow(x, 2.5).value(), tapeflow::pow(a, 2.5)));
    CHECK(equal(abs(y).value(), tapeflow::abs(s)));
    CHECK(equal(sin(y).value(), tapeflow::sin(s)));
    CHECK(equal(cos(y).value(), tapeflow::cos(s)));
    CHECK(equal(tanh(y).value(), tapeflow::tanh(s)));
    CHECK(equal(sigmoid(y).value(), tapeflow::sigmoid(s)));
    CHECK(equal(relu(y).value(), tapeflow::relu(s)));
    CHECK(equal(leaky_relu(y).value(), tapeflow::leaky_relu(s)));
    CHECK(equal(leaky_relu(y, 0.3).value(), tapeflow::leaky_relu(s, 0.3)));
    CHECK(equal(softplus(y).value(), tapeflow::softplus(s)));
    CHECK(equal(log_sigmoid(y).value(), tapeflow::log_sigmoid(s)));
    CHECK(equal(clamp(y, -0.5, 0.7).value(), tapeflow::clamp(s, -0.5, 0.7)));
}

TEST_CASE("where: gradients route by the mask, with broadcasting in each argument") {
    Rng rng(17);
    const Tensor mask{{1.0, 0.0, 0.0, 1.0}, {0.0, 1.0, 1.0, 0.0}, {1.0, 1.0, 0.0, 0.0}};
    const Tensor column_mask(Shape{3, 1}, {1.0, 0.0, 1.0});
    const Tensor row_mask{0.0, 1.0, 1.0, 0.0};
    struct Case {
        Tensor cond;
        Shape a, b;
    };
    const std::vector<Case> cases = {
        {mask, {3, 4}, {3, 4}}, {mask, {3, 1}, {4}},        {mask, {}, {1, 4}},
        {column_mask, {3, 4}, {}}, {row_mask, {3, 4}, {3, 1}}, {column_mask, {1, 4}, {3, 1}},
    };
    for (const Case& c : cases) {
        INFO(fmt::format("cond {}, a {}, b {}", c.cond.shape(), c.a, c.b));
        const Tensor a = rand(c.a, rng, -1, 1);
        const Tensor b = rand(c.b, rng, -1, 1);
        const Tensor cond = c.cond;
        CHECK_GRADCHECK([cond](const Vars& v) { return where(cond, v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([cond](const Vars& v) { return where(cond, v[0] * v[1], exp(v[1])); }, {a, b});

        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(a);
        const Var y = tape.variable(b);
        CHECK(equal(where(cond, x, y).value(), tapeflow::where(cond, a, b)));
    }

    // The branch not taken gets exactly zero, even where its value is not finite.
    constexpr double inf = std::numeric_limits<double>::infinity();
    Tape tape;
    TapeScope scope(tape);
    const Var a = tape.variable(Tensor{inf, 1.0});
    const Var b = tape.variable(Tensor{2.0, -inf});
    const Var picked = where(Tensor{0.0, 1.0}, a, b);
    CHECK(equal(picked.value(), Tensor{2.0, 1.0}));
    tape.backward(sum(picked));
    CHECK(equal(a.grad(), Tensor{0.0, 1.0}));
    CHECK(equal(b.grad(), Tensor{1.0, 0.0}));
}

TEST_CASE("long chains of ops, with a broadcast operand along the way") {
    // 50 stages of 2-4 ops each, all keeping values in a bounded range so the gradient neither
    // explodes nor vanishes below the tolerance.
    const auto chain = [](const Vars& v) {
        Var y = v[0];
        for (int i = 0; i < 50; ++i) {
            switch (i % 5) {
                case 0: y = sin(y) * 1.5; break;
                case 1: y = tanh(y + v[1]); break;  // v[1] broadcasts along the rows
                case 2: y = y * y - 0.5 * y; break;
                case 3: y = sigmoid(y * 2.0) * 2.0 - 1.0; break;
                default: y = expm1(y * 0.5) / 0.6 + log1p(square(y)) * 0.1; break;
            }
        }
        return y;
    };
    Rng rng(18);
    CHECK_GRADCHECK(chain, {rand(Shape{2, 3}, rng, -1, 1), rand(Shape{3}, rng, -0.3, 0.3)});

    // A chain of 200 plain adds and muls has the closed-form gradient 1.01^100.
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor::scalar(0.5));
    Var y = x;
    for (int i = 0; i < 100; ++i) y = y * 1.01 + 0.001;
    tape.backward(y);
    CHECK(std::abs(x.grad().item() - std::pow(1.01, 100)) <= 1e-13);
}
