// Parameter: its shapes, zero_grad, and var() as a leaf on the current tape (a constant under NoGrad).
#include "autograd/parameter.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"

using namespace tapeflow;

TEST_CASE("a Parameter starts with a zero gradient of its own shape") {
    const Parameter p(Tensor{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
    CHECK(p.shape() == Shape{2, 3});
    CHECK(p.numel() == 6);
    CHECK(equal(p.grad, Tensor::zeros(Shape{2, 3})));

    const Parameter s(Tensor::scalar(1.5));
    CHECK(s.shape() == Shape{});
    CHECK(s.numel() == 1);
    CHECK(equal(s.grad, Tensor::scalar(0.0)));

    // Moving keeps the tensors (no copy): a model is built by moving parameters into place.
    Tensor initial{1.0, 2.0};
    Parameter a(initial);
    const Parameter b(std::move(a));
    CHECK(b.value.shares_storage_with(initial));
}

TEST_CASE("zero_grad clears in place, and rebuilds a gradient of the wrong shape") {
    Parameter p(Tensor{1.0, 2.0, 3.0});
    p.grad = Tensor{4.0, 5.0, 6.0};
    const Tensor handle = p.grad;
    p.zero_grad();
    CHECK(equal(p.grad, Tensor::zeros(Shape{3})));
    CHECK(p.grad.shares_storage_with(handle));  // same buffer: an optimizer holding it sees the zeros

    p.value = Tensor{{1.0, 2.0}, {3.0, 4.0}};  // reassigned with a new shape
    p.zero_grad();
    CHECK(equal(p.grad, Tensor::zeros(Shape{2, 2})));

    Parameter q;
    q.value = Tensor{1.0};
    CHECK_FALSE(q.grad.defined());
    q.zero_grad();
    CHECK(equal(q.grad, Tensor{0.0}));
}

TEST_CASE("var() records a parameter leaf on the current tape and backward fills grad") {
    Tape tape;
    TapeScope scope(tape);
    Parameter p(Tensor{1.0, -2.0});
    const Var v = p.var();
    CHECK(v.requires_grad());
    CHECK(v.tape() == &tape);
    CHECK(tape.size() == 1);
    CHECK(std::string(tape.node(v.index()).op) == "parameter");
    CHECK(tape.node(v.index()).parameter == &p);
    CHECK(v.value().shares_storage_with(p.value));  // the weight is never copied

    // Used twice in one step (two leaves): both contributions land in grad.
    const Var loss = sum(v * v) + sum(p.var() * 3.0);
    tape.backward(loss);
    CHECK(equal(p.grad, Tensor{5.0, -1.0}));
    CHECK(equal(v.grad(), Tensor{2.0, -4.0}));  // the leaf's own share

    // A value reassigned with a new shape gets a gradient of the new shape.
    tape.clear();
    p.value = Tensor{{1.0, 2.0, 3.0}};
    tape.backward(sum(p.var()));
    CHECK(equal(p.grad, Tensor{{1.0, 1.0, 1.0}}));
}

TEST_CASE("var() under NoGrad is a constant and records nothing") {
    Tape tape;
    TapeScope scope(tape);
    Parameter p(Tensor{1.0, 2.0});
    NoGrad no_grad;
    const Var v = p.var();
    CHECK_FALSE(v.requires_grad());
    CHECK(v.tape() == nullptr);
    CHECK(tape.size() == 0);
    CHECK(v.value().shares_storage_with(p.value));
    CHECK(equal((v * 2.0).value(), Tensor{2.0, 4.0}));
    CHECK(tape.size() == 0);
}

TEST_CASE("var() of a Parameter without a value throws") {
    Parameter empty;
    CHECK_THROWS_WITH_AS(empty.var(), doctest::Contains("Parameter::var"), std::invalid_argument);
}
