// Var: the handle user code computes with. It carries its value and, when it takes part in a
// differentiable computation, the tape entry that recorded it. Var ops mirror the tensor ops
// (autograd/elementwise.hpp, reduce.hpp, linalg.hpp, shape_ops.hpp); autograd/op.hpp records new ones.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

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
    // The tape this Var was recorded on; null for a constant. Throws if that tape was destroyed or
    // belongs to another thread (see autograd/tape.hpp).
    Tape* tape() const;
    std::uint64_t tape_id() const { return tape_id_; }
    std::uint32_t index() const { return index_; }
    std::uint64_t generation() const { return generation_; }

private:
    friend class Tape;
    friend class detail::Recorder;
    friend Tape* detail::live_tape(const Var&, const char*);
    Var(Tensor value, Tape* tape, std::uint32_t index, std::uint64_t generation)
        : value_(std::move(value)), tape_(tape), index_(index), generation_(generation), tape_id_(tape->id()) {}

    Tensor value_;
    Tape* tape_ = nullptr;  // dereferenced only after detail::live_tape has found tape_id_ alive
    std::uint32_t index_ = 0;
    std::uint64_t generation_ = 0;
    std::uint64_t tape_id_ = 0;
};

namespace detail {
// The inputs of an op as `record` receives them: a braced list {a, b, …} or a vector of Vars.
class Inputs {
public:
    // The list's elements live until the end of the full expression that calls record: long enough.
    Inputs(std::initializer_list<VarRef> refs) : refs_(refs), n_(refs.size()) {}
    Inputs(const std::vector<Var>& vars) : vars_(vars.data()), n_(vars.size()) {}
    std::size_t size() const { return n_; }
    const Var& operator[](std::size_t k) const { return vars_ ? vars_[k] : refs_.begin()[k].get(); }

private:
    std::initializer_list<VarRef> refs_;
    const Var* vars_ = nullptr;
    std::size_t n_ = 0;
};
}  // namespace detail

}  // namespace tapeflow
