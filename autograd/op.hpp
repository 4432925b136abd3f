// Writing a differentiable op of your own: `record` its output with a backward rule.
//
//     // log cosh x, with d/dx = tanh x
//     Var log_cosh(const Var& x) {
//         return record("log_cosh", map(x.value(), [](double v) { return std::log(std::cosh(v)); }), {x},
//                       [](Backward& ctx) {
//                           ctx.accumulate(0, map(ctx.grad(), ctx.input(0), [](double g, double v) {
//                               return g * std::tanh(v);
//                           }));
//                       });
//     }
//
// The rule receives a Backward: the upstream gradient d loss / d out (`grad()`), the op's output
// (`value()`), each input's value (`input(k)`) or only its shape (`input_shape(k)`), whether input k
// wants a gradient (`needs_grad(k)`, to skip work), and `accumulate(k, g)`, adding g into input k's
// gradient (a g of a broadcast input's output shape is summed back to the input's shape). A rule may
// capture an axis, a constant, an index tensor: captures live in the tape's arena (no heap allocation
// per node once the tape has grown to a step's size) until tape.clear() destroys them. Capture by value:
// the rule runs during backward, after the op's caller has returned.
//
// Rules must not write into the tensors they are given: `grad()` may be the very buffer another node
// holds as its gradient (a gradient that only flows through is passed on without a copy).
// The tape enforces it: `grad()` is read-only while the rule runs (a write through any handle on it
// throws; write into a clone()), and an input or output modified in place after it was recorded is
// reported when the rule reads it (the storage versions of tensor/storage.hpp).
//
// Forward mode (jvp, jacobian by forward mode, hvp forward-over-reverse: autograd/forward.hpp) needs a
// tangent rule as well: the directional derivative of the op, ẏ = Σ_k (∂y/∂x_k)·ẋ_k, given as a fifth
// argument that takes Forward& and returns the output's tangent:
//
//     return record("log_cosh", value, {x}, backward,
//                   [](const Forward& t) { return t.tangent(0) * tapeflow::tanh(t.input(0)); });
//
// It runs while the op is recorded, only when some input carries a tangent (never on the first-order
// path). An op recorded without one works in reverse mode to any order its backward allows; when a
// tangent reaches it, recording throws std::logic_error naming the op and saying that its tangent rule
// is missing. jvpcheck (autograd/gradcheck.hpp) checks a tangent rule against central differences.
//
// An op with several outputs is recorded once, with its outputs joined along an axis, and split into
// views by `split` / `narrow` (autograd/shape_ops.hpp): each piece's gradient flows back into its slice
// of the joined node (tests/autograd/op_test.cpp records sin and cos in one node this way).
#pragma once

#include <cstddef>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "autograd/var.hpp"
#include "tensor/broadcast.hpp"

namespace tapeflow {

// What a backward rule sees of its node (see the top of this file), on the first-order fast path:
// the gradient, the output and the inputs are Tensors.
class Backward {
public:
    const Tensor& grad() const { return node_.grad; }
    const Tensor& value() const { return tape_.recorded_output(node_); }
    std::size_t n_inputs() const { return node_.n_inputs; }
    const Tensor& input(std::size_t k) const { return tape_.recorded_input(node_, k); }
    // The plain values, whatever the context (the same as value() and input(k) here).
    const Tensor& output_value() const { return value(); }
    const Tensor& input_value(std::size_t k) const { return input(k); }
    // Input k's shape only: no values are read, so an in-place write to the input is no error here
    // (reshape, sum and narrow need only the shape, as PyTorch's saved sizes).
    const Shape& input_shape(std::size_t k) const { return tape_.value(index(k)).shape(); }
    bool needs_grad(std::size_t k) const { return tape_.node(index(k)).requires_grad; }
    void accumulate(std::size_t k, Tensor gradient);
    // A tensor the rule computed from values only (a mask, a count): it carries no derivative.
    Tensor constant(Tensor t) const { return t; }
    const char* op() const { return node_.op; }

private:
    friend class Tape;
    Backward(Tape& tape, const Node& node) : tape_(tape), node_(node) {}
    std::uint32_t index(std::size_t k) const { return tape_.input_index(node_, k, "backward"); }

    Tape& tape_;
    const Node& node_;
};

// The same view of a node when the backward pass is itself recorded (create_graph,
// autograd/functional.hpp): grad(), value() and input(k) are Vars on the tape, so every op the rule
// applies to them is recorded and the gradient it accumulates can be differentiated again. A rule
// written once as a generic lambda `[](auto& ctx) { … }` over ops that exist for both Tensor and Var
// (mul, div, exp, matmul_nt, sum, broadcast_to, narrow, …) serves both passes. The context holds the
// node's index, not a reference: the tape's node list grows while the rule records.
class VarBackward {
public:
    const Var& grad() const { return grad_; }
    Var value() const;
    std::size_t n_inputs() const;
    Var input(std::size_t k) const;
    // By value (a handle): a reference into the node list would dangle once the rule records.
    Tensor output_value() const;
    Tensor input_value(std::size_t k) const;
    Shape input_shape(std::size_t k) const;
    bool needs_grad(std::size_t k) const;
    void accumulate(std::size_t k, Var gradient);
    Var constant(Tensor t) const { return Var(std::move(t)); }
    const char* op() const;

private:
    friend class Tape;
    VarBackward(Tape& tape, std::uint32_t node, const Var& grad, std::vector<Var>& grads)
        : tape_(tape), node_(node), grad_(grad), grads_(grads) {}
    std::uint32_t index(std::size_t k) const;

    Tape& tape_;
    std::uint32_t node_;
    const Var& grad_;
    std::vector<Var>& grads_;  // d root / d node, one slot per node up to the root
};

// What a tangent rule sees (forward mode, autograd/forward.hpp), called once while the op is
// recorded, when some input carries a tangent: the op's output (`value()`), each input's value
// (`input(k)`), whether input k carries a tangent (`has_tangent(k)`, to skip work) and the tangent
// itself (`tangent(k)`: d input_k along the seed direction, zeros of the input's shape when it carries
// none). The rule returns the output's tangent, of the output's shape (a broadcastable one is
// broadcast). Its names match Backward's, so a rule is written over the same ops.
class Forward {
public:
    const Tensor& value() const;
    std::size_t n_inputs() const;
    const Tensor& input(std::size_t k) const;
    bool has_tangent(std::size_t k) const;
    Tensor tangent(std::size_t k) const;
    const char* op() const;

private:
    friend class Tape;
    Forward(const Tape& tape, std::uint32_t node) : tape_(tape), node_(node) {}
    std::uint32_t index(std::size_t k) const;

    const Tape& tape_;
    std::uint32_t node_;
};

// The plain value of either kind: a generic rule reads values for its masks with it.
inline const Tensor& value_of(const Tensor& t) { return t; }
inline const Tensor& value_of(const Var& v) { return v.value(); }

namespace detail {
// How the tape handles one rule type: call it, move it into the arena, destroy it.
struct RuleOps {
    void (*invoke)(void* state, Backward& backward);
    void (*invoke_var)(void* state, VarBackward& backward);  // null: the rule takes only Backward&
    void (*relocate)(void* to, void* from);  // move-constructs at `to`
    void (*destroy)(void* state);            // null when trivially destructible
    std::size_t size;                        // 0 for a rule without captures: nothing is stored
    std::size_t align;
};

template <class R>
constexpr auto var_invoker() {
    using Fn = void (*)(void*, VarBackward&);
    if constexpr (!std::is_invocable_v<R&, VarBackward&>) {
        return Fn{nullptr};
    } else if constexpr (std::is_empty_v<R> && std::is_default_constructible_v<R>) {
        return Fn{[](void*, VarBackward& b) { R{}(b); }};
    } else {
        return Fn{[](void* s, VarBackward& b) { (*static_cast<R*>(s))(b); }};
    }
}

template <class R>
constexpr RuleOps rule_ops() {
    if constexpr (std::is_empty_v<R> && std::is_default_constructible_v<R>) {
        return {[](void*, Backward& b) { R{}(b); }, var_invoker<R>(), nullptr, nullptr, 0, 1};
    } else {
        return {[](void* s, Backward& b) { (*static_cast<R*>(s))(b); }, var_invoker<R>(),
                [](void* to, void* from) { ::new (to) R(std::move(*static_cast<R*>(from))); },
                std::is_trivially_destructible_v<R> ? nullptr : +[](void* s) { static_cast<R*>(s)->~R(); },
                sizeof(R), alignof(R)};
    }
}

// A tangent rule for the one call of record that received it (it runs before record returns, so it is
// never stored); invoke is null for an op recorded without one.
struct TangentRule {
    void* rule = nullptr;
    Tensor (*invoke)(void* rule, Forward& forward) = nullptr;
};

class Recorder {
public:
    static Var record(const char* op, Tensor value, Inputs inputs, void* rule, const RuleOps& ops, CallSite site,
                      TangentRule tangent = {});
};
}  // namespace detail

// Records one differentiable operation: `value` is its output, computed by the caller from the
// inputs' values; `rule` is its backward, any callable taking Backward&. A rule that can also be called
// with VarBackward& — a generic lambda `[](auto& ctx)` written over ops, or a struct with both
// operator() overloads — is differentiable: grad(…, {.create_graph = true}) records it. A rule taking
// only Backward& (e.g. one built on `map`) serves first-order gradients; asked for a recorded backward
// it is refused with an error naming the op. Inputs come as a braced list
// {a, b, …} or a std::vector<Var>, any number of them. If no input requires a gradient, or under
// no_grad, nothing is recorded and a constant is returned. `site` is kept for anomaly reports: left at
// its default it is the caller's line; an op built on record passes its own caller's site on. Under
// DetectAnomaly (autograd/anomaly.hpp) a NaN or ±inf in `value` throws AnomalyError. Throws
// std::logic_error for inputs from different tapes or recorded before the last tape.clear().
template <class Rule>
Var record(const char* op, Tensor value, detail::Inputs inputs, Rule&& rule, CallSite site = CallSite::current()) {
    using R = std::decay_t<Rule>;
    static_assert(std::is_invocable_v<R&, Backward&>, "a backward rule is called as rule(Backward&)");
    static_assert(alignof(R) <= alignof(std::max_align_t), "a rule's captures must not be over-aligned");
    static constexpr detail::RuleOps ops = detail::rule_ops<R>();
    R local(std::forward<Rule>(rule));
    return detail::Recorder::record(op, std::move(value), inputs, &local, ops, site);
}

// As above with a tangent rule beside the backward rule: any callable taking Forward& and returning the
// output's tangent (see Forward). An op recorded with one takes part in forward mode (jvp, jacobian by
// forward mode, hvp forward-over-reverse, autograd/forward.hpp); one recorded without is refused there,
// with an error naming the op, as soon as a tangent reaches it. The tangent rule runs while the op is
// recorded and is not stored, so it may capture the op's arguments by reference.
template <class Rule, class Tangent>
    requires std::is_invocable_r_v<Tensor, std::decay_t<Tangent>&, Forward&>
Var record(const char* op, Tensor value, detail::Inputs inputs, Rule&& rule, Tangent&& tangent,
           CallSite site = CallSite::current()) {
    using R = std::decay_t<Rule>;
    using T = std::decay_t<Tangent>;
    static_assert(std::is_invocable_v<R&, Backward&>, "a backward rule is called as rule(Backward&)");
    static_assert(alignof(R) <= alignof(std::max_align_t), "a rule's captures must not be over-aligned");
    static constexpr detail::RuleOps ops = detail::rule_ops<R>();
    R local(std::forward<Rule>(rule));
    T local_tangent(std::forward<Tangent>(tangent));
    const detail::TangentRule t{&local_tangent, [](void* r, Forward& f) -> Tensor { return (*static_cast<T*>(r))(f); }};
    return detail::Recorder::record(op, std::move(value), inputs, &local, ops, site, t);
}

// Elementwise maps for computing values and gradients: f applied to each element (a), or to the
// elements of a and b (and c) under NumPy broadcasting; `op` names the caller in shape errors.
template <class F>
Tensor map(const Tensor& a, F&& f) {
    require_defined(a, "map");
    return detail::map_unary(a, std::forward<F>(f));
}
template <class F>
Tensor map(const Tensor& a, const Tensor& b, F&& f, std::string_view op = "map") {
    return detail::map_binary(a, b, std::forward<F>(f), op);
}
template <class F>
Tensor map(const Tensor& a, const Tensor& b, const Tensor& c, F&& f, std::string_view op = "map") {
    return detail::map_ternary(a, b, c, std::forward<F>(f), op);
}

}  // namespace tapeflow
