#include "autograd/tape.hpp"

#include <iterator>
#include <stdexcept>

#include "autograd/anomaly.hpp"
#include "autograd/var.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/reduce.hpp"

namespace tapeflow {

namespace {
thread_local Tape default_tape;
thread_local Tape* current_tape = nullptr;
thread_local bool grad_mode = true;

std::size_t tensor_bytes(const Tensor& t) { return t.defined() ? t.numel() * sizeof(double) : 0; }

void check_input_count(const char* op, std::size_t n) {
    if (n > Node::max_inputs)
        throw std::invalid_argument(
            fmt::format("{}: an op takes at most {} inputs, got {}", op, Node::max_inputs, n));
}
}  // namespace

Tape& Tape::current() { return current_tape ? *current_tape : default_tape; }

std::uint32_t Tape::push_leaf(const char* op, Tensor value, bool requires_grad, Parameter* p) {
    Node& n = nodes_.emplace_back();
    n.op = op;
    n.value = std::move(value);
    n.requires_grad = requires_grad;
    n.parameter = p;
    return static_cast<std::uint32_t>(nodes_.size() - 1);
}

Var Tape::variable(Tensor value) {
    require_defined(value, "Tape::variable");
    const std::uint32_t i = push_leaf("variable", value, true, nullptr);
    return Var(std::move(value), this, i, generation_);
}

Var Tape::parameter(Parameter& p) {
    require_defined(p.value, "Tape::parameter");
    const std::uint32_t i = push_leaf("parameter", p.value, true, &p);
    return Var(p.value, this, i, generation_);
}

void Tape::check(const Var& v, std::string_view op) const {
    if (!v.tape()) throw std::logic_error(fmt::format("{}: the Var is a constant (not recorded on a tape)", op));
    if (v.tape() != this)
        throw std::logic_error(fmt::format("{}: the Var was recorded on a different tape", op));
    if (v.generation() != generation_)
        throw std::logic_error(fmt::format(
            "{}: this Var was recorded before tape.clear() (generation {}, the tape is now at generation {}); "
            "recompute it in the current step",
            op, v.generation(), generation_));
}

Var Tape::push(const char* op, Tensor value, std::initializer_list<VarRef> inputs, BackwardRule rule,
               NodeAttributes attributes, CallSite site) {
    check_input_count(op, inputs.size());
    // Every input is checked before anything is pushed, so a rejected op leaves the tape as it was.
    for (const Var& in : inputs)
        if (in.requires_grad()) check(in, op);
    std::array<std::uint32_t, Node::max_inputs> indices{};
    std::uint32_t k = 0;
    for (const Var& in : inputs) {
        if (in.requires_grad()) {
            indices[k++] = in.index();
        } else {
            // A constant operand gets a leaf of its own so the backward rule can read its value.
            indices[k++] = push_leaf("constant", in.value(), false, nullptr);
        }
    }
    Node& n = nodes_.emplace_back();
    n.op = op;
    n.inputs = indices;
    n.n_inputs = k;
    n.requires_grad = true;
    n.value = value;
    n.backward = rule;
    n.attributes = std::move(attributes);
    n.site = site;
    return Var(std::move(value), this, static_cast<std::uint32_t>(nodes_.size() - 1), generation_);
}

void Tape::accumulate(std::uint32_t input, Tensor gradient) {
    Node& n = nodes_[input];
    if (!n.requires_grad) return;
    // Broadcasting in the forward pass is undone here, once, for every op.
    if (!(gradient.shape() == n.value.shape())) gradient = sum_to(gradient, n.value.shape());
    // Copy on write: the first contribution is kept as it is, even when it is also held elsewhere
    // (add passes its upstream gradient on to both inputs, reshape a view of it), so a gradient that
    // only flows through costs no copy. A later contribution is added in place only into a buffer
    // this node holds alone.
    if (!n.grad.defined()) n.grad = std::move(gradient);
    else if (n.grad.use_count() == 1) add_into(n.grad, gradient);
    else n.grad = tapeflow::add(n.grad, gradient);
}

void Tape::backward(const Var& root) {
    check(root, "backward");
    if (root.numel() != 1)
        throw std::invalid_argument(fmt::format(
            "backward: the root must have one element (a scalar loss), got shape {}; pass a seed for a "
            "vector-Jacobian product",
            root.shape()));
    backward(root, Tensor::ones(root.shape()));
}

void Tape::backward(const Var& root, const Tensor& seed, bool accumulate_into_parameters) {
    check(root, "backward");
    require_defined(seed, "backward");
    if (!(seed.shape() == root.shape()))
        throw std::invalid_argument(
            fmt::format("backward: seed shape {} differs from the root's shape {}", seed.shape(), root.shape()));
    const bool detect = anomaly_detection_enabled();
    if (detect) detail::check_seed(*this, root.index(), seed);
    for (Node& n : nodes_) n.grad = Tensor();
    nodes_[root.index()].grad = seed.clone();
    for (std::size_t i = root.index() + 1; i-- > 0;) {
        const Node& n = nodes_[i];
        if (!n.grad.defined()) continue;  // not on a path to the root
        if (n.parameter && accumulate_into_parameters) {
            Parameter& p = *n.parameter;
            if (!p.grad.defined() || !(p.grad.shape() == p.value.shape())) p.grad = Tensor::zeros(p.value.shape());
            add_into(p.grad, n.grad);
        }
        if (n.backward) {
            n.backward(*this, n);
            if (detect) detail::check_backward(*this, static_cast<std::uint32_t>(i));
        }
    }
}

Tensor Tape::grad(const Var& v) const {
    check(v, "grad");
    // A copy: gradient buffers may be shared between nodes (see accumulate).
    const Tensor& g = nodes_[v.index()].grad;
    return g.defined() ? g.clone() : Tensor::zeros(v.shape());
}

void Tape::clear() {
    nodes_.clear();  // keeps capacity: the next step records into the same slots
    ++generation_;
}

std::size_t Tape::bytes() const {
    std::size_t total = nodes_.capacity() * sizeof(Node);
    for (const Node& n : nodes_)
        total += tensor_bytes(n.value) + tensor_bytes(n.grad) + tensor_bytes(n.attributes.saved);
    return total;
}

std::string Tape::dump() const {
    std::string out;
    auto it = std::back_inserter(out);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        fmt::format_to(it, "#{:<3} {:<12}", i, n.op);
        std::string args;
        for (std::uint32_t k = 0; k < n.n_inputs; ++k) args += fmt::format("{}#{}", k ? ", " : "", n.inputs[k]);
        fmt::format_to(it, " ({:<10}) -> {:<10}", args, n.value.shape());
        if (n.value.numel() <= 4) fmt::format_to(it, " = {:.6g}", fmt::join(n.value.span(), ", "));
        if (!n.requires_grad) out += "   (no grad)";
        out += '\n';
    }
    return out;
}

std::string Tape::to_dot() const {
    std::string out = "digraph tape {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n";
    auto it = std::back_inserter(out);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        const bool leaf = n.n_inputs == 0;
        fmt::format_to(it, "  n{} [label=\"#{} {}\\n{}\", shape={}{}];\n", i, i, n.op, n.value.shape(),
                       leaf ? "box" : "ellipse", n.requires_grad ? "" : ", style=dashed");
        for (std::uint32_t k = 0; k < n.n_inputs; ++k) fmt::format_to(it, "  n{} -> n{};\n", n.inputs[k], i);
    }
    out += "}\n";
    return out;
}

TapeScope::TapeScope(Tape& tape) : previous_(current_tape) { current_tape = &tape; }
TapeScope::~TapeScope() { current_tape = previous_; }

NoGrad::NoGrad() : previous_(grad_mode) { grad_mode = false; }
NoGrad::~NoGrad() { grad_mode = previous_; }

bool grad_enabled() { return grad_mode; }

Tensor Var::grad() const {
    if (!tape_) throw std::logic_error("Var::grad: this Var is a constant (not recorded on a tape)");
    return tape_->grad(*this);
}

Var record(const char* op, Tensor value, std::initializer_list<VarRef> inputs, BackwardRule rule,
           NodeAttributes attributes, CallSite site) {
    check_input_count(op, inputs.size());
    Tape* tape = nullptr;
    for (const Var& in : inputs) {
        if (!in.requires_grad()) continue;
        if (tape && tape != in.tape())
            throw std::logic_error(fmt::format("{}: inputs were recorded on different tapes", op));
        tape = in.tape();
    }
    if (!tape || !grad_mode) {
        if (anomaly_detection_enabled()) detail::check_forward(op, value, inputs, nullptr, std::nullopt, site);
        return Var(std::move(value));
    }
    Var out = tape->push(op, std::move(value), inputs, rule, std::move(attributes), site);
    if (anomaly_detection_enabled()) detail::check_forward(op, out.value(), inputs, tape, out.index(), site);
    return out;
}

}  // namespace tapeflow
