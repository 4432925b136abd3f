// Anomaly detection: find the op that first produced a NaN or ±inf, in the forward pass or in the
// backward pass (as torch.autograd.detect_anomaly).
//
//     {
//         DetectAnomaly guard;        // on this thread, until the end of the scope
//         Var y = log(x);             // a NaN or ±inf output throws AnomalyError here …
//         tape.backward(sum(y));      // … and so does a NaN or ±inf gradient
//     }
//
// The error names the op, its tape index, its shape and its inputs' (with which of them already held
// a non-finite value), and the line that recorded it:
//
//     anomaly detected in the forward pass: 'log' (tape #1) produced NaN at element 1 of 3
//       recorded at tests/autograd/anomaly_test.cpp:27 in void run()
//       output [3]; inputs: #0 variable [3] (finite)
//
// What is checked while a guard is active on the thread:
//   forward   the output of every op, as `record` receives it, including ops that record nothing
//             (all inputs constant, or under NoGrad). Leaves (variables, parameters) are not ops: the
//             first op that reads a non-finite leaf is reported, and its input list shows the culprit.
//             A −inf is an anomaly too (log(0) is one), as the name promises: open the guard only
//             around code that should stay finite.
//   backward  the seed, then after each node's backward rule the gradients of the node's inputs.
//             Every gradient was finite before the rule ran (or an earlier check would have thrown),
//             so the rule that just ran is the one to blame.
// On a forward anomaly the offending node is already on the tape (tape.dump() shows it); on a backward
// anomaly the sweep stops where it is, and Parameter gradients accumulated so far stay.
//
// Where the line comes from (design). `std::source_location::current()` as a defaulted parameter is
// evaluated at the call, so the line is the caller's only if the default sits on the function the
// user calls. Hence every named Var op (exp, log, matmul, sum, reshape, …) takes
// `CallSite site = CallSite::current()` as its last parameter and hands it to `record`, which stores
// it in the node; `record`'s own default catches the user's line for custom ops. Operators cannot take
// a defaulted parameter: `a * b` records an empty CallSite, and the report names the nearest earlier
// op on the tape that has a line ("after 'exp' (tape #2) at …"), which is in practice the same
// expression or the one before it. An op called inside library code (a bijector's exp, nn::linear)
// reports the library line that called it: the tape index and the shapes lead from there to the
// user's step.
//
// Cost. The CallSite is stored in every node whether or not a guard is active: in GCC it is one
// pointer to a static record, copied with the node, so a guard opened around backward() alone still
// names the forward lines. Without a guard the checks cost one thread-local bool read per recorded op
// and per backward() call; no value is scanned.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "autograd/var.hpp"

namespace tapeflow {

// While alive, turns anomaly detection on (or, with `enabled = false`, off) for this thread; the
// previous mode comes back when it ends, so guards nest.
class DetectAnomaly {
public:
    explicit DetectAnomaly(bool enabled = true);
    ~DetectAnomaly();
    DetectAnomaly(const DetectAnomaly&) = delete;
    DetectAnomaly& operator=(const DetectAnomaly&) = delete;

private:
    bool previous_;
};

namespace detail {
extern thread_local constinit bool anomaly_mode;
}  // namespace detail

inline bool anomaly_detection_enabled() { return detail::anomaly_mode; }

// What DetectAnomaly throws: the message above, and the op and tape index on their own.
class AnomalyError : public std::runtime_error {
public:
    AnomalyError(const std::string& message, std::string op, std::optional<std::uint32_t> tape_index)
        : std::runtime_error(message), op_(std::move(op)), tape_index_(tape_index) {}
    const std::string& op() const { return op_; }
    // Empty for an op that was computed but not recorded (constant inputs, NoGrad).
    std::optional<std::uint32_t> tape_index() const { return tape_index_; }

private:
    std::string op_;
    std::optional<std::uint32_t> tape_index_;
};

namespace detail {
// Called by `record` with the op's output: `tape` and `index` name the node when it was recorded.
void check_forward(const char* op, const Tensor& value, Inputs inputs, const Tape* tape,
                   std::optional<std::uint32_t> index, CallSite site);
// Called by Tape::backward with the seed, and after node `index`'s backward rule.
void check_seed(const Tape& tape, std::uint32_t root, const Tensor& seed);
void check_backward(const Tape& tape, std::uint32_t index);
}  // namespace detail

}  // namespace tapeflow
