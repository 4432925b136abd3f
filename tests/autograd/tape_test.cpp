// The tape: recording order, backward against derivatives worked out by hand, accumulation,
// use-after-clear detection, the no_grad and tape scopes, the DOT dump, and flat memory over a
// training loop.
#include "autograd/tape.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"

using namespace tapeflow;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

bool close(const Tensor& a, const Tensor& b, double tol) {
    INFO("got " << fmt::format("{}", a) << ", expected " << fmt::format("{}", b));
    return a.shape() == b.shape() && max_abs_diff(a, b) <= tol;
}

}  // namespace

// A Tensor becomes a Var only when asked (Var(t)): implicitly, `matmul(x, w.value)` compiled and gave w
// no gradient, and `tensor + tensor` became a tape op wherever tensor/elementwise.hpp was not included.
static_assert(!std::is_convertible_v<Tensor, Var>);
static_assert(!std::is_convertible_v<const Tensor&, Var>);
static_assert(std::is_constructible_v<Var, Tensor>);
template <class X, class W>
concept multipliable_by_matmul = requires(const X& x, const W& w) { matmul(x, w); };
template <class X, class T>
concept multipliable = requires(const X& x, const T& t) { x * t; };
static_assert(!multipliable_by_matmul<Var, Tensor>);  // matmul(x, w.value): w's gradient would be lost
static_assert(multipliable_by_matmul<Var, Var>);
static_assert(!multipliable<Var, Tensor>);
static_assert(multipliable<Var, Var>);

TEST_CASE("nodes are recorded in execution order and dump lists them with their op names") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.5, -1.0});
    const Var y = tape.variable(Tensor{2.0, 3.0});
    const Var p = x * y;
    const Var e = exp(p);
    const Var s = sum(e * Var(Tensor{1.0, 2.0}));  // the constant operand gets a leaf of its own

    const std::vector<std::string> expected{"variable", "variable", "mul", "exp", "constant", "mul", "sum"};
    REQUIRE(tape.size() == expected.size());
    const std::vector<std::string> lines = lines_of(tape.dump());
    REQUIRE(lines.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(lines[i]);
        CHECK(std::string(tape.node(static_cast<std::uint32_t>(i)).op) == expected[i]);
        CHECK(lines[i].rfind(fmt::format("#{} ", i), 0) == 0);
        CHECK(lines[i].find(expected[i]) != std::string::npos);
    }
    CHECK(lines[2].find("#0, #1") != std::string::npos);       // mul's inputs
    CHECK(lines[4].find("(no grad)") != std::string::npos);    // the constant
    CHECK(lines[6].find("[]") != std::string::npos);           // sum's 0-d shape
    CHECK(p.index() == 2);
    CHECK(s.index() == 6);
}

TEST_CASE("backward of a small expression matches the derivatives worked out by hand") {
    Tape tape;
    TapeScope scope(tape);
    const Tensor xv{0.5, -1.0, 2.0};
    const Tensor yv{2.0, 3.0, -0.25};
    const Var x = tape.variable(xv);
    const Var y = tape.variable(yv);
    // f = Σ (x·y + sin x) / y²   ⇒  ∂f/∂x = (y + cos x) / y²,  ∂f/∂y = −x/y² − 2 sin x / y³.
    const Var f = sum((x * y + sin(x)) / square(y));
    tape.backward(f);
    Tensor dx(xv.shape()), dy(xv.shape());
    for (std::size_t i = 0; i < 3; ++i) {
        const double a = xv[i], b = yv[i];
        dx[i] = (b + std::cos(a)) / (b * b);
        dy[i] = -a / (b * b) - 2 * std::sin(a) / (b * b * b);
    }
    CHECK(close(x.grad(), dx, 1e-14));
    CHECK(close(y.grad(), dy, 1e-13));

    // A scalar chain: z = tanh(w·v + 1), ∂z/∂w = (1 − z²)·v, ∂z/∂v = (1 − z²)·w.
    const Var w = tape.variable(Tensor::scalar(0.3));
    const Var v = tape.variable(Tensor::scalar(-0.7));
    const Var z = tanh(w * v + 1.0);
    tape.backward(z);
    const double zz = std::tanh(0.3 * -0.7 + 1.0);
    CHECK(std::abs(w.grad().item() - (1 - zz * zz) * -0.7) <= 1e-15);
    CHECK(std::abs(v.grad().item() - (1 - zz * zz) * 0.3) <= 1e-15);
}

TEST_CASE("a value used twice receives both contributions") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.5, -2.0, 0.0});
    tape.backward(sum(x * x));
    CHECK(equal(x.grad(), Tensor{3.0, -4.0, 0.0}));

    tape.backward(sum(x + x + x));
    CHECK(equal(x.grad(), Tensor{3.0, 3.0, 3.0}));

    // Through an intermediate used on two paths: f = Σ (e + e·x), e = eˣ ⇒ f' = eˣ(2 + x).
    const Var e = exp(x);
    tape.backward(sum(e + e * x));
    const Tensor expected = tapeflow::exp(x.value()) * (x.value() + 2.0);
    CHECK(close(x.grad(), expected, 1e-15));
}

TEST_CASE("a gradient shared by the inputs of add is never written through to a sibling") {
    // add hands its upstream gradient to both inputs; a later contribution into one of them must
    // not show up in the other (the buffers are copied on write).
    Tape tape;
    TapeScope scope(tape);
    const Var a = tape.variable(Tensor{1.0, 2.0});
    const Var b = tape.variable(Tensor{3.0, 4.0});
    const Var t = a * 2.0;  // recorded before s, so its rule runs after s's
    const Var s = a + b;
    tape.backward(sum(s) + sum(t));
    CHECK(equal(a.grad(), Tensor{3.0, 3.0}));
    CHECK(equal(b.grad(), Tensor{1.0, 1.0}));
    CHECK(equal(s.grad(), Tensor{1.0, 1.0}));

    // grad() hands out a copy: writing into it changes nothing on the tape.
    Tensor g = b.grad();
    g.fill(7.0);
    CHECK(equal(b.grad(), Tensor{1.0, 1.0}));
    CHECK(equal(s.grad(), Tensor{1.0, 1.0}));
}

TEST_CASE("backward recomputes intermediate gradients but adds into Parameter::grad") {
    Tape tape;
    TapeScope scope(tape);
    Parameter p(Tensor{1.0, 2.0, 3.0});
    const Var x = tape.variable(Tensor{1.0, -1.0, 0.5});
    const Var loss = sum(p.var() * x * 2.0);
    tape.backward(loss);
    CHECK(equal(p.grad, Tensor{2.0, -2.0, 1.0}));
    CHECK(equal(x.grad(), Tensor{2.0, 4.0, 6.0}));

    // Same root again: the Var gradient is recomputed from scratch, the Parameter one accumulates.
    tape.backward(loss);
    CHECK(equal(x.grad(), Tensor{2.0, 4.0, 6.0}));
    CHECK(equal(p.grad, Tensor{4.0, -4.0, 2.0}));

    // And across a clear, the way gradient accumulation over micro-batches uses it.
    tape.clear();
    tape.backward(sum(p.var() * Var(Tensor{0.5, 0.5, 0.5})));
    CHECK(equal(p.grad, Tensor{4.5, -3.5, 2.5}));
}

TEST_CASE("backward from an intermediate root ignores the nodes recorded after it") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor::scalar(0.25));
    const Var y = exp(x);
    const Var z = y * 3.0;
    tape.backward(y);
    CHECK(x.grad().item() == std::exp(0.25));
    CHECK(z.grad().item() == 0.0);  // after the root: not on a path to it
}

TEST_CASE("constants get no gradient") {
    Tape tape;
    TapeScope scope(tape);
    const Var c(Tensor{2.0, 3.0});
    const Var x = tape.variable(Tensor{1.0, 1.0});
    const Var y = x * c;
    CHECK_FALSE(c.requires_grad());
    CHECK(y.requires_grad());
    const Node& leaf = tape.node(y.index() - 1);
    CHECK(std::string(leaf.op) == "constant");
    CHECK_FALSE(leaf.requires_grad);
    tape.backward(sum(y));
    CHECK_FALSE(leaf.grad.defined());  // no gradient buffer is ever filled for a constant
    CHECK(equal(x.grad(), Tensor{2.0, 3.0}));
    CHECK_THROWS_WITH_AS(c.grad(), doctest::Contains("constant"), std::logic_error);

    // An op on constants only records nothing.
    const std::size_t before = tape.size();
    const Var k = exp(c) + c;
    CHECK_FALSE(k.requires_grad());
    CHECK(tape.size() == before);
    CHECK_THROWS_WITH_AS(tape.backward(k), doctest::Contains("constant"), std::logic_error);
}

TEST_CASE("the gradient of a Var that is not on a path to the root is zeros") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var w = tape.variable(Tensor{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    const Var u = exp(w);  // recorded, but the loss does not use it
    tape.backward(sum(x * x));
    CHECK(equal(w.grad(), Tensor::zeros(Shape{2, 3})));
    CHECK(equal(u.grad(), Tensor::zeros(Shape{2, 3})));
    CHECK(equal(x.grad(), Tensor{2.0, 4.0}));
    // Before any backward, every gradient reads as zeros too.
    const Var fresh = tape.variable(Tensor{7.0});
    CHECK(equal(fresh.grad(), Tensor{0.0}));
}

TEST_CASE("a Var used after tape.clear() is detected, in an op, in backward and in grad") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var loss = sum(x * x);
    tape.backward(loss);
    tape.clear();
    CHECK(tape.size() == 0);
    CHECK_THROWS_WITH_AS(exp(x), doctest::Contains("clear"), std::logic_error);
    CHECK_THROWS_WITH_AS(x * x, doctest::Contains("clear"), std::logic_error);
    CHECK_THROWS_WITH_AS(tape.backward(loss), doctest::Contains("clear"), std::logic_error);
    CHECK_THROWS_WITH_AS(tape.backward(loss, Tensor::scalar(1.0)), doctest::Contains("clear"), std::logic_error);
    CHECK_THROWS_WITH_AS(x.grad(), doctest::Contains("clear"), std::logic_error);
    // A constant operand in front of the stale Var must not leave a leaf behind either.
    CHECK_THROWS_WITH_AS(Var(Tensor{1.0, 1.0}) * x, doctest::Contains("clear"), std::logic_error);
    CHECK(tape.size() == 0);

    // The message names the op, and new Vars work as usual.
    CHECK_THROWS_WITH_AS(tanh(x), doctest::Contains("tanh"), std::logic_error);
    const Var y = tape.variable(Tensor{3.0});
    tape.backward(sum(y * y));
    CHECK(equal(y.grad(), Tensor{6.0}));
}

TEST_CASE("Vars from two different tapes cannot meet in one op") {
    Tape a, b;
    const Var x = a.variable(Tensor{1.0});
    const Var y = b.variable(Tensor{2.0});
    CHECK_THROWS_WITH_AS(x + y, doctest::Contains("different tapes"), std::logic_error);
    CHECK_THROWS_WITH_AS(mul(x, y), doctest::Contains("mul"), std::logic_error);
    CHECK_THROWS_WITH_AS(a.backward(sum(y)), doctest::Contains("different tape"), std::logic_error);
    CHECK_THROWS_WITH_AS(a.grad(y), doctest::Contains("different tape"), std::logic_error);
    CHECK(a.size() == 1);
    CHECK(b.size() == 2);  // y and sum(y)
}

TEST_CASE("backward of a non-scalar root needs a seed of the root's shape") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    const Var y = x * x;
    CHECK_THROWS_WITH_AS(tape.backward(y), doctest::Contains("[2, 3]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tape.backward(y, Tensor::ones(Shape{3, 2})), doctest::Contains("seed shape [3, 2]"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tape.backward(y, Tensor::ones(Shape{3, 2})), doctest::Contains("[2, 3]"),
                         std::invalid_argument);
    CHECK_THROWS_AS(tape.backward(y, Tensor()), std::invalid_argument);

    // With a seed: the vector–Jacobian product seedᵀ·J = seed ⊙ 2x.
    const Tensor seed{{1.0, 0.0, -1.0}, {0.5, 2.0, 0.0}};
    tape.backward(y, seed);
    CHECK(equal(x.grad(), Tensor{{2.0, 0.0, -6.0}, {4.0, 20.0, 0.0}}));
    // A one-element root of any rank is a scalar loss.
    const Var one = sum(sum(x, 1, true), 0, true);
    REQUIRE(one.shape() == Shape{1, 1});
    tape.backward(one);
    CHECK(equal(x.grad(), Tensor::ones(Shape{2, 3})));
}

TEST_CASE("NoGrad records nothing, nests, and restores the previous mode") {
    Tape tape;
    TapeScope scope(tape);
    Parameter p(Tensor{1.0, 2.0});
    const Var x = tape.variable(Tensor{0.5, -0.5});
    const std::size_t before = tape.size();
    CHECK(grad_enabled());
    {
        NoGrad outer;
        CHECK_FALSE(grad_enabled());
        const Var y = exp(x) * x + p.var();
        CHECK_FALSE(y.requires_grad());
        CHECK(tape.size() == before);
        CHECK(equal(y.value(), tapeflow::exp(x.value()) * x.value() + p.value));
        {
            NoGrad inner;
            CHECK_FALSE(grad_enabled());
        }
        CHECK_FALSE(grad_enabled());  // the inner scope restored "off", not "on"
        CHECK_FALSE(sum(x).requires_grad());
    }
    CHECK(grad_enabled());
    CHECK(exp(x).requires_grad());
    CHECK(tape.size() == before + 1);
}

TEST_CASE("TapeScope switches Tape::current() and restores the previous tape") {
    Tape& outside = Tape::current();
    Tape first;
    {
        TapeScope s1(first);
        CHECK(&Tape::current() == &first);
        Tape second;
        {
            TapeScope s2(second);
            CHECK(&Tape::current() == &second);
            Parameter p(Tensor{1.0});
            const Var v = p.var();
            CHECK(v.tape() == &second);
            CHECK(second.size() == 1);
        }
        CHECK(&Tape::current() == &first);
        CHECK(first.size() == 0);
    }
    CHECK(&Tape::current() == &outside);
}

TEST_CASE("to_dot draws the graph: leaves as boxes, edges from inputs to ops") {
    Tape tape;
    TapeScope scope(tape);
    Parameter w(Tensor{2.0});
    const Var x = tape.variable(Tensor{1.0});
    const Var y = exp(x);                     // n0 variable, n1 exp
    const Var z = w.var() * y + Var(Tensor{1.0});  // n2 parameter, n3 mul, n4 constant, n5 add
    (void)z;
    const std::string dot = tape.to_dot();
    CAPTURE(dot);
    CHECK(dot.rfind("digraph", 0) == 0);
    CHECK(dot.find("n0 -> n1;") != std::string::npos);
    CHECK(dot.find("n2 -> n3;") != std::string::npos);
    CHECK(dot.find("n1 -> n3;") != std::string::npos);
    CHECK(dot.find("n3 -> n5;") != std::string::npos);
    CHECK(dot.find("n4 -> n5;") != std::string::npos);
    CHECK(dot.find("#0 variable") != std::string::npos);
    CHECK(dot.find("#2 parameter") != std::string::npos);
    CHECK(dot.find("shape=box") != std::string::npos);
    CHECK(dot.find("style=dashed") != std::string::npos);  // the constant
    CHECK(dot.find("exp") != std::string::npos);
    CHECK(dot.back() == '\n');
}

TEST_CASE("record rejects more inputs than a node can hold") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0});
    auto rule = [](Tape&, const Node&) {};
    CHECK(record("three", x.value().clone(), {x, x, x}, rule).requires_grad());
    const std::size_t before = tape.size();
    CHECK_THROWS_WITH_AS(record("four", x.value().clone(), {x, x, x, x}, rule), doctest::Contains("four"),
                         std::invalid_argument);
    CHECK(tape.size() == before);
}

TEST_CASE("tape memory stays flat over a training loop") {
    // An MLP-ish step: tanh(x·W1 + b1)·W2 + b2, mean squared error, backward, SGD, clear.
    Tape tape;
    TapeScope scope(tape);
    Parameter w1(Tensor{{0.1, -0.2, 0.3}, {0.4, 0.1, -0.3}});
    Parameter b1(Tensor{0.0, 0.1, -0.1});
    Parameter w2(Tensor(Shape{3, 1}, {0.2, -0.1, 0.3}));
    Parameter b2(Tensor{0.05});
    const Tensor x{{0.5, -1.0}, {1.0, 0.25}, {-0.5, 0.75}, {0.0, -0.3}};
    const Tensor target(Shape{4, 1}, {0.3, -0.2, 0.5, 0.1});
    Parameter* params[] = {&w1, &b1, &w2, &b2};

    std::size_t size_before_clear = 0, bytes_before_clear = 0, bytes_after_clear = 0;
    int size_changes = 0, bytes_changes = 0, not_empty = 0, cleared_bytes_changes = 0;
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < 10000; ++step) {
        const Var h = tanh(matmul(Var(x), w1.var()) + b1.var());
        const Var out = matmul(h, w2.var()) + b2.var();
        const Var loss = mean(square(out - Var(target)));
        tape.backward(loss);
        for (Parameter* p : params) {
            add_into(p->value, p->grad, -0.1);
            p->zero_grad();
        }
        (step == 0 ? first_loss : last_loss) = loss.item();
        if (step == 0) {
            size_before_clear = tape.size();
            bytes_before_clear = tape.bytes();
        }
        size_changes += tape.size() != size_before_clear;
        bytes_changes += tape.bytes() != bytes_before_clear;
        tape.clear();
        if (step == 0) bytes_after_clear = tape.bytes();
        not_empty += tape.size() != 0;
        cleared_bytes_changes += tape.bytes() != bytes_after_clear;
    }
    CHECK(size_before_clear > 10);
    CHECK(bytes_after_clear > 0);  // the slots are kept for the next step
    CHECK(bytes_after_clear < bytes_before_clear);
    CHECK(size_changes == 0);
    CHECK(bytes_changes == 0);
    CHECK(not_empty == 0);
    CHECK(cleared_bytes_changes == 0);
    CHECK(last_loss < 0.5 * first_loss);  // and it did train
}
