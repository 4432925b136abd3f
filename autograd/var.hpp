// Var: the handle user code computes with. It carries its value and, when it takes part in a
// differentiable computation, the tape entry that recorded it. Var ops mirror the tensor ops
// (autograd/elementwise.hpp, reduce.hpp, linalg.hpp, shape_ops.hpp).
#pragma once

#include <cstdint>
#include <initializer_list>

#include "autograd/tape.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow {

class Var {
public:
    Var() = default;
    // A constant: it has a value and no tape entry; ops treat it as a leaf without gradient.
    // Explicit: an implicit conversion turned `tensor + tensor` into a tape op whenever
    // tensor/elementwise.hpp was not included, and let `matmul(x, w.value())` silently drop w's gradient.
    explicit Var(Tensor value) : value_(std::move(value)) {}

    const Tensor& value() const { return value_; }
    const Shape& shape() const { return value_.shape(); }
    std::size_t numel() const { return value_.numel(); }
    double item() const { return value_.item(); }

    // True when recorded on a tape with a path to a leaf that wants a gradient.
    bool requires_grad() const { return tape_ != nullptr; }
    // d root / d this after `tape.backward(root)`.
    Tensor grad() const;
    Tape* tape() const { return tape_; }
    std::uint32_t index() const { return index_; }
    std::uint64_t generation() const { return generation_; }

private:
    friend class Tape;
    Var(Tensor value, Tape* tape, std::uint32_t index, std::uint64_t generation)
        : value_(std::move(value)), tape_(tape), index_(index), generation_(generation) {}

    Tensor value_;
    Tape* tape_ = nullptr;
    std::uint32_t index_ = 0;
    std::uint64_t generation_ = 0;
};

// Records one differentiable operation: `value` is its output, computed by the caller from the
// inputs' values; `rule` is its backward. If no input requires a gradient, or under no_grad,
// nothing is recorded and a constant is returned. This is also how users define their own ops
// (see tutorial 01). `site` is kept for anomaly reports: left at its default it is the caller's line;
// an op built on record passes its own caller's site on. Under DetectAnomaly (autograd/anomaly.hpp) a
// NaN or ±inf in `value` throws AnomalyError. Throws std::invalid_argument for more than
// Node::max_inputs (3) inputs, and std::logic_error for inputs from different tapes or recorded
// before the last tape.clear().
Var record(const char* op, Tensor value, std::initializer_list<VarRef> inputs, BackwardRule rule,
           NodeAttributes attributes = {}, CallSite site = CallSite::current());

}  // namespace tapeflow
