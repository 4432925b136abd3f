// The tape: a Wengert list of every differentiable operation, recorded in execution order.
//
// Recording order is already a valid topological order, so `backward` is one reverse loop over
// the nodes: no recursion, no graph sort (as in Stan Math and Adept). `clear()` rewinds the tape
// for the next step and keeps its capacity, so a training loop's memory stays flat, and bumps a
// generation counter so that a Var from an earlier step is detected instead of silently misread.
//
// Three mistakes are caught instead of silently giving a wrong gradient: a recorded tensor modified in
// place before backward and then read by a rule (each node saves its inputs' storage versions,
// tensor/storage.hpp, and a rule's read of its output or an input compares them, as PyTorch checks a
// saved tensor when it is unpacked: a tensor no rule reads may change); a rule writing into the
// gradient it receives (that buffer may be another node's gradient too, so it is read-only while the
// rule runs); and a Var used after its Tape was destroyed or on another thread (a Var names its tape
// by a process-wide id that never repeats, looked up among the live tapes before the tape is touched).
// A Tape belongs to the thread that created it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <source_location>
#include <string>
#include <vector>

#include "autograd/parameter.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow {

class Tape;
class Var;
struct Node;

using VarRef = std::reference_wrapper<const Var>;

// Where an op was called from. Every named Var op (exp, matmul, sum, …) and `record` take one as a
// defaulted last parameter, so the default is evaluated at the caller's line; operators cannot, and
// record an empty one. Anomaly reports print it (autograd/anomaly.hpp). A pointer-sized handle.
using CallSite = std::source_location;

class Backward;
class VarBackward;
class Forward;
class ForwardLevel;

// One recorded operation. Its inputs are tape indices kept in the tape's side array (Tape::inputs), and
// its backward rule — any callable, with whatever state it captured — lives in the tape's arena, so
// recording a node allocates nothing once the tape has grown to a step's size (autograd/op.hpp).
struct Node {
    const char* op = "";
    std::uint32_t first_input = 0;  // into the tape's input list
    std::uint32_t n_inputs = 0;
    bool requires_grad = false;
    Tensor value;
    Tensor grad;  // d loss / d value, filled during backward
    Parameter* parameter = nullptr;  // set on a parameter's leaf: its gradient goes there
    void (*rule)(void* state, Backward& backward) = nullptr;
    // The same rule over Vars (the backward recorded on the tape, for create_graph); null when the op
    // gave only a Tensor rule, and then it cannot be differentiated twice (autograd/op.hpp).
    void (*var_rule)(void* state, VarBackward& backward) = nullptr;
    void (*destroy)(void* state) = nullptr;  // null when the state needs no destructor
    void* state = nullptr;                   // the rule's captures, in the tape's arena
    CallSite site;  // the line that recorded the op; empty for leaves and operators
    std::uint64_t version = 0;  // value.version() when the node was recorded
};

namespace detail {
class Recorder;
class Inputs;
struct TangentRule;
}  // namespace detail

class Tape {
public:
    Tape();
    ~Tape();
    Tape(const Tape&) = delete;
    Tape& operator=(const Tape&) = delete;

    // The tape new operations record on: this thread's default tape unless a TapeScope is active.
    static Tape& current();

    // A leaf that receives a gradient (an input we differentiate with respect to).
    Var variable(Tensor value);
    // A leaf whose gradient goes to a Parameter at backward time.
    Var parameter(Parameter& p);

    // Seeds d root / d root = 1 (root must have one element) and sweeps the tape once in reverse.
    // Intermediate gradients are recomputed from scratch on every call; Parameter gradients
    // accumulate (+=), as in PyTorch.
    void backward(const Var& root);
    // Vector–Jacobian product: seeds d loss / d root = seed (same shape as root).
    void backward(const Var& root, const Tensor& seed, bool accumulate_into_parameters = true);

    // The reverse sweep recorded on this tape (create_graph, autograd/functional.hpp): d root / d input
    // for each input as Vars, seeded with d root / d root = seed. Each visited op runs its Var rule, so
    // the gradients are ordinary recorded values that can be differentiated again. Parameters' .grad
    // and nodes' Tensor gradients are left untouched.
    std::vector<Var> differentiate(const Var& root, const Var& seed, const std::vector<Var>& inputs);

    // d root / d v after backward (a copy); zeros if v did not contribute to the root.
    Tensor grad(const Var& v) const;

    // Drops every node (keeping the capacity) and invalidates all Vars recorded so far.
    void clear();

    std::size_t size() const { return nodes_.size(); }
    // Bytes held: node slots (including reserved capacity) and the tensors the nodes hold (a tensor
    // shared by several nodes counts once for each).
    std::size_t bytes() const;
    std::uint64_t generation() const { return generation_; }
    // This tape's identity: unique in the process, never reused after the tape is destroyed.
    std::uint64_t id() const { return id_; }
    const Node& node(std::uint32_t index) const { return nodes_.at(index); }
    // One line per node in execution order: index, op, inputs, shape, and a value preview.
    std::string dump() const;
    // The graph in Graphviz DOT: leaves as boxes, parameters named, edges input → op.
    std::string to_dot() const;

    // The tape indices of node n's inputs.
    std::span<const std::uint32_t> inputs(const Node& n) const { return {inputs_.data() + n.first_input, n.n_inputs}; }
    const Tensor& value(std::uint32_t index) const { return nodes_[index].value; }
    // Throws unless v was recorded on this tape in its current generation.
    void check(const Var& v, const char* op) const;

    // For the rule contexts (autograd/op.hpp). The tape index of node n's input k, throwing if n has
    // no input k (`rule` names the kind of rule that asked: "backward", "tangent").
    std::uint32_t input_index(const Node& n, std::size_t k, const char* rule) const {
        if (k >= n.n_inputs) [[unlikely]] report_missing_input(n, k, rule);
        return inputs_[n.first_input + k];
    }
    // Node n's output and its input k as they were recorded, throwing if either was modified in place
    // since: the check sits where a rule reads, so it costs one load and compare per read.
    const Tensor& recorded_output(const Node& n) const {
        if (n.value.version() != n.version) [[unlikely]] report_modified_output(n);
        return n.value;
    }
    const Tensor& recorded_input(const Node& n, std::size_t k) const {
        const Tensor& v = nodes_[input_index(n, k, "backward")].value;
        if (v.version() != input_versions_[n.first_input + k]) [[unlikely]] report_modified_input(n, k);
        return v;
    }

    // Forward mode (autograd/forward.hpp): true while a ForwardLevel is open on this tape, and whether
    // node `index` carries a tangent of it.
    bool forward_open() const { return forward_open_; }
    bool has_tangent(std::uint32_t index) const { return index < tangents_.size() && tangents_[index].defined(); }

private:
    friend class Backward;
    friend class VarBackward;
    friend class detail::Recorder;
    friend class Forward;
    friend class ForwardLevel;
    std::uint32_t push_leaf(const char* op, Tensor value, bool requires_grad, Parameter* p);
    void accumulate(std::uint32_t input, Tensor gradient);
    // Node i as a Var of the current generation (the recorded backward reads values through it).
    Var var_at(std::uint32_t i);
    // Raw storage for a rule's state, aligned; valid until clear().
    void* allocate_state(std::size_t size, std::size_t align);
    void destroy_states();
    // The errors of the three accessors above, out of line: the reads inline only the comparisons.
    [[noreturn, gnu::cold, gnu::noinline]] void report_missing_input(const Node& n, std::size_t k,
                                                                     const char* rule) const;
    [[noreturn, gnu::cold, gnu::noinline]] void report_modified_output(const Node& n) const;
    [[noreturn, gnu::cold, gnu::noinline]] void report_modified_input(const Node& n, std::size_t k) const;
    // Forward mode at record time (autograd/forward.cpp): whether a tangent reaches an op with these
    // inputs, and the tangent of the just-recorded node `index` by its op's tangent rule.
    bool tangent_reaches(const detail::Inputs& inputs) const;
    void propagate_tangent(std::uint32_t index, const detail::TangentRule& rule);

    std::vector<Node> nodes_;
    std::vector<std::uint32_t> inputs_;
    std::vector<std::uint64_t> input_versions_;  // beside inputs_: each input's value.version() at record
    // The rules' states: blocks kept across clear(), filled front to back.
    std::vector<std::unique_ptr<std::byte[]>> arena_;
    std::size_t arena_block_ = 0, arena_used_ = 0;
    std::uint64_t generation_ = 0;
    std::uint64_t id_;
    // Forward mode: the tangent of each node (undefined: none, i.e. zero), filled only while a
    // ForwardLevel is open. Recording reads forward_open_ once and touches nothing else otherwise, so
    // the first-order path pays one predictable branch per op.
    bool forward_open_ = false;
    std::vector<Tensor> tangents_;
};

namespace detail {
// The live tape v was recorded on, found by its id among the tapes alive in the process (never by
// following a possibly dangling pointer). Throws naming `op` if that tape was destroyed or belongs to
// another thread; null for a constant.
Tape* live_tape(const Var& v, const char* op);
}  // namespace detail

// Makes `tape` the current tape for the lifetime of the scope (used by gradcheck to record on a
// private tape without disturbing the user's).
class TapeScope {
public:
    explicit TapeScope(Tape& tape);
    ~TapeScope();
    TapeScope(const TapeScope&) = delete;
    TapeScope& operator=(const TapeScope&) = delete;

private:
    Tape* previous_;
};

// The no_grad scope: while one is alive on this thread, operations compute values and record
// nothing (as torch.no_grad()). Use it for evaluation, sampling and logging.
class NoGrad {
public:
    NoGrad();
    ~NoGrad();
    NoGrad(const NoGrad&) = delete;
    NoGrad& operator=(const NoGrad&) = delete;

private:
    bool previous_;
};

// The opposite scope (torch.enable_grad): recording is on again inside it, even within a NoGrad. The
// checks use it to take a gradient while evaluating a function under NoGrad (gradgradcheck).
class EnableGrad {
public:
    EnableGrad();
    ~EnableGrad();
    EnableGrad(const EnableGrad&) = delete;
    EnableGrad& operator=(const EnableGrad&) = delete;

private:
    bool previous_;
};

bool grad_enabled();

}  // namespace tapeflow
