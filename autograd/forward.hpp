// Forward mode: tangents carried beside the recorded values, one forward pass for J·v.
//
//     Tape& tape = Tape::current();
//     Var x = tape.variable(x0);
//     ForwardLevel level(tape);         // a forward level on this tape, until the end of the scope
//     level.seed(x, v);                 // ẋ = v
//     Var y = tanh(matmul(w, x));       // each op records its value and, by its tangent rule, ẏ
//     Tensor Jv = level.tangent(y);     // J·v, computed as the ops ran (no reverse sweep)
//
// This is dual-number forward mode (Griewank & Walther 2008, ch. 3; Baydin et al. 2018 §3.1): each
// op's tangent rule maps its inputs' tangents to its output's, ẏ = Σ_k (∂y/∂x_k)·ẋ_k, while the op
// is recorded (autograd/op.hpp `record` with a tangent rule, docs/theory.md §11). The tangents are
// kept per tape node, so a tangent lives exactly as long as the value it belongs to. The recorded
// backward of grad(…, {.create_graph = true}) consists of ordinary ops, so tangents flow through it:
// opening a level, seeding x with v and taking the recorded gradient gives the tangent of ∇f, the
// Hessian-vector product (forward-over-reverse, Pearlmutter 1994).
//
// Levels: what may cross them (the rule; every refusal is a std::logic_error naming the op).
//   - A level belongs to one tape and lasts for the ForwardLevel's scope; its tangents are dropped when
//     it closes (and by tape.clear()). Vars recorded inside it stay ordinary values afterwards.
//   - Inside a level, a Var of the outer computation — recorded before the level opened, or never
//     seeded — is a constant of the function: its tangent is zero, even if it was computed from the
//     seeded x (J·v is then the derivative of the function as written, as in torch.func.jvp).
//   - Levels do not nest on one tape: opening a second level while one is open is refused (forward
//     over forward would need tangents of tangents). A level on another tape (jacobian's private
//     tape) is independent, and mixing Vars of two tapes in one op is refused as always.
//   - A tangent may not be dropped silently: a first-order reverse sweep (tape.backward, grad without
//     create_graph) from a root that carries a tangent is refused, and so is an op under NoGrad whose
//     input carries one; an op without a tangent rule is refused as soon as a tangent reaches it.
#pragma once

#include "autograd/var.hpp"

namespace tapeflow {

class ForwardLevel {
public:
    // Opens a level on `tape`; throws std::logic_error if one is already open there.
    explicit ForwardLevel(Tape& tape);
    ~ForwardLevel();
    ForwardLevel(const ForwardLevel&) = delete;
    ForwardLevel& operator=(const ForwardLevel&) = delete;

    // Gives x (recorded on this tape, in its current generation) the tangent `tangent` (x's shape).
    // Ops recorded afterwards from x carry tangents; ops recorded before do not change.
    void seed(const Var& x, const Tensor& tangent);
    // The tangent of y: zeros of y's shape for a constant or a Var no seeded value reaches.
    Tensor tangent(const Var& y) const;

private:
    Tape& tape_;
};

}  // namespace tapeflow
