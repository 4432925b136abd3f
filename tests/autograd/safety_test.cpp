// Mistakes the tape catches instead of silently returning a wrong gradient (autograd/tape.hpp): a
// recorded tensor modified in place before backward, a backward rule writing into the gradient it
// received (which another node may share), and a Var used after its Tape was destroyed or on another
// thread.
#include <doctest/doctest.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/functional.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "autograd/var.hpp"
#include "tensor/elementwise.hpp"

using namespace tapeflow;

namespace {

// The message of the std::logic_error f throws, or "" if it throws none.
template <class F>
std::string logic_error_of(F&& f) {
    try {
        f();
    } catch (const std::logic_error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) {
    INFO("message: " << text);
    return text.find(part) != std::string::npos;
}

// A leaf x on a tape of its own, sharing its storage with t: a write to t is an in-place write to x.
struct LeafOnTape {
    Tape tape;
    TapeScope scope{tape};
    Tensor t{0.5, 1.5};
    Var x = tape.variable(t);
};

// identity, whose rule passes on twice the upstream gradient by writing into it: a rule that breaks
// the contract of autograd/op.hpp. `how` picks the write: 0 compound assignment, 1 element, 2 data().
Var doubling_in_place(const Var& x, int how) {
    return record("doubling_in_place", x.value().clone(), {x}, [how](Backward& ctx) {
        Tensor g = ctx.grad();  // a handle on the same buffer, not a copy
        if (how == 0) g *= 2.0;
        else if (how == 1) g[0] = 2.0 * g[0];
        else g.data()[0] *= 2.0;
        ctx.accumulate(0, g);
    });
}

}  // namespace

TEST_CASE_FIXTURE(LeafOnTape,
                  "an input modified in place between forward and backward is reported, naming op, input and versions") {
    const Var loss = sum(sin(x));
    const std::uint64_t recorded = t.version();
    t += Tensor{1.0, 1.0};  // sin's rule would now use cos(x + 1) as the derivative
    const std::string message = logic_error_of([&] { tape.backward(loss); });
    CHECK(contains(message, "input 0 (node #0 'variable') of 'sin' (node #1, recorded at "));
    CHECK(contains(message, "modified in place"));
    CHECK(contains(message, fmt::format("its version was {} when recorded and is {} now", recorded, recorded + 1)));
}

TEST_CASE("every kind of in-place write is caught: element, fill, data(), at(), and a view's write") {
    const auto modified_after_recording = [](auto&& modify) {
        LeafOnTape leaf;
        const Var loss = sum(leaf.x * leaf.x);
        modify(leaf.t);
        return logic_error_of([&] { leaf.tape.backward(loss); });
    };
    CHECK(contains(modified_after_recording([](Tensor& t) { t[1] = 3.0; }), "'mul'"));
    CHECK(contains(modified_after_recording([](Tensor& t) { t.fill(0.0); }), "'mul'"));
    CHECK(contains(modified_after_recording([](Tensor& t) { t.data()[0] = 1.0; }), "'mul'"));
    CHECK(contains(modified_after_recording([](Tensor& t) { t.at({0}) = 1.0; }), "'mul'"));
    CHECK(contains(modified_after_recording([](Tensor& t) { t.reshape(Shape{2, 1}) *= 2.0; }), "'mul'"));
}

TEST_CASE("an op's output modified in place before backward is reported") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.5, 1.5});
    const Var e = exp(x);  // exp's rule reads its output
    Tensor out = e.value();
    out.fill(0.0);
    CHECK(contains(logic_error_of([&] { tape.backward(e, Tensor::ones(e.shape())); }), "the output of 'exp'"));
    // Seen from a later op that reads it (sin; the sweep reaches it before exp), the same tensor is
    // that op's modified input.
    const Var e2 = exp(x);
    const Var loss = sum(sin(e2));
    Tensor later = e2.value();
    later[0] = 7.0;
    CHECK(contains(logic_error_of([&] { tape.backward(loss); }),
                   fmt::format("input 0 (node #{} 'exp') of 'sin'", e2.index())));
}

TEST_CASE_FIXTURE(LeafOnTape, "reading through a const handle and modifying after backward are fine") {
    const Var loss = sum(exp(x));
    const Tensor& read = t;
    CHECK(read[0] == 0.5);
    CHECK(read.data()[1] == 1.5);
    tape.backward(loss);
    CHECK(allclose(x.grad(), tapeflow::exp(Tensor{0.5, 1.5})));
    t += Tensor{1.0, 1.0};  // after backward: nothing left to check
    CHECK(allclose(x.grad(), tapeflow::exp(Tensor{0.5, 1.5})));
}

TEST_CASE_FIXTURE(LeafOnTape,
                  "reading a recorded tensor through a non-const handle is no write; assigning to it still is") {
    const Var e = exp(x);
    const Var loss = sum(e * x);
    Tensor out = e.value();  // non-const handles on a recorded input and a recorded output
    const double seen = t[0] + t.at({1}) + out[1];
    CHECK(seen == doctest::Approx(2.0 + std::exp(1.5)));
    tape.backward(loss);  // d/dx Σ x e^x = (1 + x) e^x
    CHECK(allclose(x.grad(), Tensor{1.5 * std::exp(0.5), 2.5 * std::exp(1.5)}));
    // A rule may read its upstream gradient through a non-const copy of the handle, too.
    const Var y = record("reads_its_gradient", x.value().clone(), {x}, [](Backward& ctx) {
        Tensor g = ctx.grad();
        Tensor scaled(g.shape());
        for (std::size_t i = 0; i < g.numel(); ++i) scaled[i] = 3.0 * g[i];
        ctx.accumulate(0, scaled);
    });
    const Var loss2 = sum(y);
    tape.backward(loss2);
    CHECK(allclose(x.grad(), Tensor{3.0, 3.0}));
    // An assignment through the same accessors is a write, and backward reports it.
    const Var loss3 = sum(sin(x));
    t[1] = t[1];  // even a write of the same value: the storage cannot tell
    CHECK(contains(logic_error_of([&] { tape.backward(loss3); }), "input 0 (node #0 'variable') of 'sin'"));
}

TEST_CASE_FIXTURE(LeafOnTape, "a recorded tensor that no rule reads may be modified: only a rule's reads are checked") {
    const Var e = exp(x);  // exp's rule reads its output, never its input
    const Var loss = sum(e);
    t.fill(9.0);
    tape.backward(loss);
    CHECK(allclose(x.grad(), tapeflow::exp(Tensor{0.5, 1.5})));
    // The same write is reported once a rule reads the tensor (sin reads its input).
    const Var loss2 = sum(exp(x) + sin(x));
    t.fill(1.0);
    CHECK(contains(logic_error_of([&] { tape.backward(loss2); }), "of 'sin'"));
}

TEST_CASE("rules that need only an input's shape (reshape, narrow, sum) leave it free to change") {
    Tape tape;
    TapeScope scope(tape);
    Tensor t{0.5, 1.5, 2.5, 3.5};
    const Var x = tape.variable(t);
    const Var loss = sum(narrow(reshape(x, Shape{2, 2}), 0, 1, 1)) + sum(x, 0, false);
    t.fill(9.0);
    tape.backward(loss);  // d/dx: 1 from the full sum, and 1 more on the narrowed second row
    CHECK(allclose(x.grad(), Tensor{1.0, 1.0, 2.0, 2.0}));
    const std::vector<Var> g = grad(loss, {x}, {.create_graph = true});
    CHECK(allclose(g[0].value(), Tensor{1.0, 1.0, 2.0, 2.0}));
}

TEST_CASE_FIXTURE(LeafOnTape, "the recorded backward (create_graph) reports a modified input it reads, too") {
    const Var loss = sum(sin(x));
    t[0] = 2.0;
    const std::string message = logic_error_of([&] { grad(loss, {x}, {.create_graph = true}); });
    CHECK(contains(message, "input 0 (node #0 'variable') of 'sin'"));
    CHECK(contains(message, "modified in place"));
    const Var e = exp(x);
    Tensor out = e.value();
    out[1] = 0.0;
    const Tensor seed = Tensor::ones(e.shape());
    CHECK(contains(logic_error_of([&] { grad(e, {x}, seed, {.create_graph = true}); }), "the output of 'exp'"));
}

TEST_CASE("a rule cannot write into its upstream gradient, which another node shares") {
    // add hands its upstream gradient to both inputs without copying: z's and y's gradients are one
    // buffer. Before the fix, z's rule doubled y's gradient as well (y.grad() came out 2, not 1).
    for (int how = 0; how < 3; ++how) {
        CAPTURE(how);
        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(Tensor{1.0});
        const Var y = tape.variable(Tensor{1.0});
        const Var z = doubling_in_place(x, how);
        const Var loss = sum(z + y);
        CHECK(contains(logic_error_of([&] { tape.backward(loss); }), "read-only"));
    }
}

TEST_CASE("the gradient is writable again after the rule has run, and a rule's own tensors always are") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var y = record("twice", x.value() * 2.0, {x}, [](Backward& ctx) {
        Tensor g = ctx.grad().clone();  // the documented way: a copy of one's own
        g *= 2.0;
        ctx.accumulate(0, std::move(g));
    });
    tape.backward(sum(y));
    CHECK(equal(x.grad(), Tensor{2.0, 2.0}));
    Tensor seed = tape.node(y.index()).grad;
    CHECK_FALSE(seed.read_only());
}

TEST_CASE("a Var from a destroyed tape is detected, even when a new tape takes the old one's address") {
    // A Tape per loop iteration: each tape is likely built where the previous one was, so comparing
    // addresses cannot tell them apart; the ids never repeat.
    std::optional<Var> previous;
    for (int step = 0; step < 3; ++step) {
        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(Tensor{1.0, 2.0});
        if (previous) {
            CHECK(contains(logic_error_of([&] { (void)exp(*previous); }), "has been destroyed"));
            CHECK(contains(logic_error_of([&] { (void)(x + *previous); }), "has been destroyed"));
            CHECK(contains(logic_error_of([&] { (void)previous->grad(); }), "has been destroyed"));
            CHECK(contains(logic_error_of([&] { (void)previous->tape(); }), "has been destroyed"));
            CHECK(contains(logic_error_of([&] { tape.backward(sum(*previous)); }), "has been destroyed"));
            CHECK(previous->tape_id() != tape.id());
        }
        tape.backward(sum(exp(x)));
        previous = x;
    }
}

TEST_CASE("a Var of another thread's tape is detected") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    std::string in_op, in_grad;
    std::thread other([&] {
        in_op = logic_error_of([&] { (void)exp(x); });
        in_grad = logic_error_of([&] { (void)x.grad(); });
    });
    other.join();
    CHECK(contains(in_op, "belongs to another thread"));
    CHECK(contains(in_grad, "belongs to another thread"));
    // The owning thread still uses it.
    tape.backward(sum(x * x));
    CHECK(equal(x.grad(), Tensor{2.0, 4.0}));
}

TEST_CASE("tape ids are unique among live and destroyed tapes") {
    Tape a;
    std::uint64_t destroyed_id = 0;
    {
        Tape b;
        destroyed_id = b.id();
        CHECK(a.id() != b.id());
    }
    Tape c;
    CHECK(c.id() != destroyed_id);
    CHECK(c.id() != a.id());
}
