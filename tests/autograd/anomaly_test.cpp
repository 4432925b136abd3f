// Anomaly detection: the first NaN or ±inf, forward or backward, throws an AnomalyError naming the op,
// its tape index, the shapes and the line that recorded it; without a guard nothing is checked.
#include "autograd/anomaly.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <source_location>
#include <string>
#include <thread>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"

using namespace tapeflow;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The message of the AnomalyError `f` throws ("" if it throws nothing, which fails the test).
template <class F>
std::string anomaly_message(F&& f) {
    try {
        f();
    } catch (const AnomalyError& e) {
        return e.what();
    }
    FAIL("no AnomalyError was thrown");
    return "";
}

// "anomaly_test.cpp:<line>": how a report names a line of this file.
std::string this_file_at(std::uint_least32_t line) { return fmt::format("anomaly_test.cpp:{}", line); }

}  // namespace

TEST_CASE("a NaN produced in the forward pass names the op, its index, the shapes and the user's line") {
    Tape tape;
    TapeScope scope(tape);
    DetectAnomaly guard;
    const Var x = tape.variable(Tensor{1.0, -2.0, 3.0});
    const auto line = std::source_location::current().line() + 1;
    const std::string m = anomaly_message([&] { (void)log(x); });
    CAPTURE(m);
    CHECK(m.find("anomaly detected in the forward pass: 'log' (tape #1) produced NaN at element 1 of 3") == 0);
    CHECK(m.find("recorded at ") != std::string::npos);
    CHECK(m.find(this_file_at(line)) != std::string::npos);
    CHECK(m.find("output [3]; inputs: #0 variable [3] (finite)") != std::string::npos);
    // The offending node stays on the tape for tape.dump().
    CHECK(tape.size() == 2);
}

TEST_CASE("AnomalyError carries the op and the tape index on their own") {
    Tape tape;
    TapeScope scope(tape);
    DetectAnomaly guard;
    const Var x = tape.variable(Tensor{800.0});
    const Var y = x * 1.0;
    try {
        (void)exp(y);
        FAIL("exp(800) overflows and should have thrown");
    } catch (const AnomalyError& e) {
        CHECK(e.op() == "exp");
        REQUIRE(e.tape_index().has_value());
        CHECK(*e.tape_index() == 2);  // #0 variable, #1 mul_scalar, #2 exp
        CHECK(std::string(e.what()).find("'exp' (tape #2) produced +inf at element 0 of 1") != std::string::npos);
    }
}

TEST_CASE("matmul and reductions report their shapes and the shapes of their inputs") {
    Tape tape;
    TapeScope scope(tape);
    DetectAnomaly guard;
    const Var a = tape.variable(Tensor::full({2, 3}, 1e200));
    const Var b = tape.variable(Tensor::full({3, 4}, 1e200));
    const auto line = std::source_location::current().line() + 1;
    const std::string m = anomaly_message([&] { (void)matmul(a, b); });
    CAPTURE(m);
    CHECK(m.find("'matmul' (tape #2) produced +inf at element 0 of 8") != std::string::npos);
    CHECK(m.find("output [2, 4]; inputs: #0 variable [2, 3] (finite), #1 variable [3, 4] (finite)") != std::string::npos);
    CHECK(m.find(this_file_at(line)) != std::string::npos);
}

TEST_CASE("an operator has no line of its own: the report names the nearest earlier op that has one") {
    Tape tape;
    TapeScope scope(tape);
    DetectAnomaly guard;
    const Var x = tape.variable(Tensor{0.0, 1.0});
    const auto line = std::source_location::current().line() + 1;
    const Var e = exp(x);                                          // #1
    const Var z = tape.variable(Tensor{1.0, 1.0});                 // #2
    const std::string m = anomaly_message([&] { (void)(z / (e - 1.0)); });  // rsub → #3, div → #4
    CAPTURE(m);
    CHECK(m.find("'div' (tape #4) produced +inf at element 0 of 2") != std::string::npos);
    CHECK(m.find("recorded by an operator (no line of its own) after 'exp' (tape #1) at ") != std::string::npos);
    CHECK(m.find(this_file_at(line)) != std::string::npos);
    CHECK(m.find("inputs: #2 variable [2] (finite), #3 add_scalar [2] (finite)") != std::string::npos);
}

TEST_CASE("a value that is finite forward but whose gradient is infinite is caught in the backward pass") {
    // √x at 0: the value is 0, the derivative 1/(2√x) is +inf.
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{0.0, 4.0});
    const auto line = std::source_location::current().line() + 1;
    const Var r = sqrt(x);
    const Var loss = sum(r);
    // The guard is opened around backward only: the forward line was stored anyway.
    DetectAnomaly guard;
    const std::string m = anomaly_message([&] { tape.backward(loss); });
    CAPTURE(m);
    CHECK(m.find("anomaly detected in the backward pass: the backward rule of 'sqrt' (tape #1) gave input 0 "
                 "(#0 variable [2]) a gradient with +inf at element 0 of 2") == 0);
    CHECK(m.find("recorded at ") != std::string::npos);
    CHECK(m.find(this_file_at(line)) != std::string::npos);
    CHECK(m.find("output [2], upstream gradient finite; inputs: #0 variable [2] (finite)") != std::string::npos);
}

TEST_CASE("a custom op with a wrong backward rule is reported at the line that called record") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0, 3.0});
    const auto line = std::source_location::current().line() + 1;
    const Var y = record("bad_square", tapeflow::square(x.value()), {x}, [](Backward& ctx) {
        // Wrong on purpose: 0/0 instead of 2x·g.
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), Tensor::full(ctx.value().shape(), kNaN)));
    });
    const Var loss = sum(y);
    DetectAnomaly guard;
    const std::string m = anomaly_message([&] { tape.backward(loss); });
    CAPTURE(m);
    CHECK(m.find("the backward rule of 'bad_square' (tape #1) gave input 0 (#0 variable [3]) a gradient with NaN "
                 "at element 0 of 3") != std::string::npos);
    CHECK(m.find(this_file_at(line)) != std::string::npos);
}

TEST_CASE("a NaN already in a leaf is reported at the first op that reads it, with the input marked") {
    Tape tape;
    TapeScope scope(tape);
    DetectAnomaly guard;
    const Var w = tape.variable(Tensor{1.0, kNaN});
    const std::string m = anomaly_message([&] { (void)tanh(w); });
    CAPTURE(m);
    CHECK(m.find("'tanh' (tape #1) produced NaN at element 1 of 2") != std::string::npos);
    CHECK(m.find("inputs: #0 variable [2] (holds NaN at element 1)") != std::string::npos);
}

TEST_CASE("ops that record nothing (constant inputs, NoGrad) are checked too") {
    DetectAnomaly guard;
    {
        const Var c(Tensor{-1.0});
        const std::string m = anomaly_message([&] { (void)log(c); });
        CAPTURE(m);
        CHECK(m.find("'log' (not on the tape) produced NaN at element 0 of 1") != std::string::npos);
        CHECK(m.find("inputs: input 0 [1] (finite) (not recorded") != std::string::npos);
    }
    {
        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(Tensor{-1.0});
        NoGrad no_grad;
        CHECK_THROWS_AS((void)sqrt(x), AnomalyError);
    }
}

TEST_CASE("a non-finite seed is reported before the sweep starts") {
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{1.0, 2.0});
    const Var y = exp(x);
    DetectAnomaly guard;
    const std::string m = anomaly_message([&] { tape.backward(y, Tensor{1.0, -kInf}); });
    CHECK(m == "anomaly detected in the backward pass: the seed for 'exp' (tape #1) holds -inf at element 1 of 2");
}

TEST_CASE("without a guard nothing is checked; guards nest and are per thread") {
    CHECK_FALSE(anomaly_detection_enabled());
    Tape tape;
    TapeScope scope(tape);
    const Var x = tape.variable(Tensor{-1.0});
    CHECK(std::isnan(log(x).item()));  // silently NaN, as without detection in PyTorch
    {
        DetectAnomaly on;
        CHECK(anomaly_detection_enabled());
        CHECK_THROWS_AS((void)log(x), AnomalyError);
        {
            DetectAnomaly off(false);
            CHECK_FALSE(anomaly_detection_enabled());
            CHECK(std::isnan(log(x).item()));
        }
        CHECK(anomaly_detection_enabled());
        bool other_thread_enabled = true;
        std::thread([&] { other_thread_enabled = anomaly_detection_enabled(); }).join();
        CHECK_FALSE(other_thread_enabled);
    }
    CHECK_FALSE(anomaly_detection_enabled());
}

TEST_CASE("a finite computation gives the same values and gradients with and without the guard") {
    auto run = [](bool detect) {
        Tape tape;
        TapeScope scope(tape);
        DetectAnomaly guard(detect);
        const Var x = tape.variable(Tensor{{0.5, -1.0}, {2.0, 0.25}});
        const Var w = tape.variable(Tensor{{1.0, -2.0}, {0.5, 3.0}});
        const Var loss = sum(log_sigmoid(matmul(x, w)) * x + sqrt(square(x) + 1.0));
        tape.backward(loss);
        return std::pair{loss.item(), tape.grad(x)};
    };
    const auto [plain, plain_grad] = run(false);
    const auto [checked, checked_grad] = run(true);
    CHECK(plain == checked);
    CHECK(max_abs_diff(plain_grad, checked_grad) == 0.0);
}
