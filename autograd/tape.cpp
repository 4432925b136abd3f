#include "autograd/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "autograd/anomaly.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
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

// Arena blocks for the rules' states: one block holds the captures of a few thousand typical rules.
constexpr std::size_t arena_block_bytes = 64 * 1024;

// The live tapes of the process. A Var names its tape by id; the id is looked up here before the
// tape is touched, so a Var that outlived its tape (a Tape per loop iteration) or crossed to another
// thread is reported instead of read through a dangling pointer. Ids come from a 64-bit counter and
// are never reused, so a new tape at the old address is not mistaken for the old one.
struct LiveTape {
    std::uint64_t id;
    Tape* tape;
    std::thread::id owner;
};
struct TapeRegistry {
    std::mutex mutex;
    std::vector<LiveTape> live;
};
// Never destroyed: thread-local tapes unregister at thread exit, which may come after static destructors.
TapeRegistry& registry() {
    static TapeRegistry* r = new TapeRegistry;
    return *r;
}
std::atomic<std::uint64_t> next_tape_id{1};
// Bumped by every tape destruction: a thread's cached lookup is trusted only while it is unchanged.
std::atomic<std::uint64_t> tapes_destroyed{0};
struct TapeLookup {
    std::uint64_t id = 0;
    std::uint64_t destroyed = 0;
    Tape* tape = nullptr;
};
thread_local TapeLookup last_lookup;
}  // namespace

Tape::Tape() : id_(next_tape_id.fetch_add(1, std::memory_order_relaxed)) {
    TapeRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    r.live.push_back({id_, this, std::this_thread::get_id()});
}

Tape::~Tape() {
    destroy_states();
    TapeRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    std::erase_if(r.live, [&](const LiveTape& t) { return t.id == id_; });
    tapes_destroyed.fetch_add(1, std::memory_order_release);
}

namespace detail {
Tape* live_tape(const Var& v, const char* op) {
    if (!v.tape_) return nullptr;
    if (v.tape_id_ == last_lookup.id && last_lookup.destroyed == tapes_destroyed.load(std::memory_order_acquire))
        return last_lookup.tape;
    TapeRegistry& r = registry();
    std::lock_guard lock(r.mutex);
    const auto it = std::find_if(r.live.begin(), r.live.end(), [&](const LiveTape& t) { return t.id == v.tape_id_; });
    if (it == r.live.end())
        throw std::logic_error(fmt::format("{}: the Var was recorded on tape #{}, which has been destroyed; a Var "
                                           "must not outlive its Tape (keep the Tape alive, or record the Var again)",
                                           op, v.tape_id_));
    if (it->owner != std::this_thread::get_id())
        throw std::logic_error(fmt::format("{}: the Var was recorded on tape #{}, which belongs to another thread; "
                                           "a Tape and its Vars are used only by the thread that created the Tape",
                                           op, v.tape_id_));
    last_lookup = {v.tape_id_, tapes_destroyed.load(std::memory_order_acquire), it->tape};
    return it->tape;
}
}  // namespace detail

void Tape::destroy_states() {
    for (Node& n : nodes_)
        if (n.destroy) n.destroy(n.state);
}

void* Tape::allocate_state(std::size_t size, std::size_t align) {
    if (size > arena_block_bytes)
        throw std::invalid_argument(fmt::format("record: a rule's captures take {} bytes, more than the {} a rule may "
                                                "hold; capture a Tensor (a handle) instead of large arrays",
                                                size, arena_block_bytes));
    for (;;) {
        if (arena_block_ < arena_.size()) {
            const std::size_t offset = (arena_used_ + align - 1) / align * align;
            if (offset + size <= arena_block_bytes) {
                arena_used_ = offset + size;
                return arena_[arena_block_].get() + offset;
            }
            ++arena_block_;
            arena_used_ = 0;
        } else {
            arena_.push_back(std::make_unique<std::byte[]>(arena_block_bytes));
        }
    }
}

Tape& Tape::current() { return current_tape ? *current_tape : default_tape; }

std::uint32_t Tape::push_leaf(const char* op, Tensor value, bool requires_grad, Parameter* p) {
    Node& n = nodes_.emplace_back();
    n.op = op;
    n.value = std::move(value);
    n.requires_grad = requires_grad;
    n.parameter = p;
    n.version = n.value.version();
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

void Tape::check(const Var& v, const char* op) const {
    if (!v.requires_grad())
        throw std::logic_error(fmt::format("{}: the Var is a constant (not recorded on a tape)", op));
    if (v.tape_id() != id_) {
        detail::live_tape(v, op);  // names a destroyed tape or another thread's
        throw std::logic_error(
            fmt::format("{}: the Var was recorded on a different tape (#{}, this is #{})", op, v.tape_id(), id_));
    }
    if (v.generation() != generation_)
        throw std::logic_error(fmt::format(
            "{}: this Var was recorded before tape.clear() (generation {}, the tape is now at generation {}); "
            "recompute it in the current step",
            op, v.generation(), generation_));
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
    else if (n.grad.use_count() == 1 && !n.grad.read_only()) add_into(n.grad, gradient);
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

namespace {
// Marks the gradient a rule receives read-only while the rule runs (it may also be the gradient of
// the nodes it was passed on to, see Tape::accumulate), and restores the previous state afterwards.
// The gradient is defined (the sweep skips nodes without one), so its header is reached once.
class ReadOnlyWhileRuleRuns {
public:
    explicit ReadOnlyWhileRuleRuns(const Tensor& grad)
        : header_(storage_header(const_cast<double*>(grad.data()))), before_(header_.read_only) {
        header_.read_only = 1;
    }
    ~ReadOnlyWhileRuleRuns() { header_.read_only = before_; }
    ReadOnlyWhileRuleRuns(const ReadOnlyWhileRuleRuns&) = delete;
    ReadOnlyWhileRuleRuns& operator=(const ReadOnlyWhileRuleRuns&) = delete;

private:
    StorageHeader& header_;
    std::uint32_t before_;
};

std::string describe_site(const CallSite& site) {
    if (!site.file_name() || !*site.file_name()) return "";
    return fmt::format(", recorded at {}:{}", site.file_name(), site.line());
}
}  // namespace

namespace {
[[noreturn]] void throw_modified(const std::string& what, std::uint64_t then, std::uint64_t now) {
    throw std::logic_error(fmt::format(
        "backward: {} was modified in place after it was recorded: its version was {} when recorded and is "
        "{} now, so the gradient would use the modified values; clone() a tensor before modifying it, or "
        "modify it after backward",
        what, then, now));
}
}  // namespace

void Tape::report_missing_input(const Node& n, std::size_t k, const char* rule) const {
    throw std::out_of_range(
        fmt::format("{}: {} rule asked for input {} of an op with {} inputs", n.op, rule, k, n.n_inputs));
}

void Tape::report_modified_output(const Node& n) const {
    const auto index = static_cast<std::size_t>(&n - nodes_.data());
    throw_modified(fmt::format("the output of '{}' (node #{}{})", n.op, index, describe_site(n.site)), n.version,
                   n.value.version());
}

void Tape::report_modified_input(const Node& n, std::size_t k) const {
    const auto index = static_cast<std::size_t>(&n - nodes_.data());
    const std::uint32_t j = inputs_[n.first_input + k];
    throw_modified(fmt::format("input {} (node #{} '{}') of '{}' (node #{}{})", k, j, nodes_[j].op, n.op, index,
                               describe_site(n.site)),
                   input_versions_[n.first_input + k], nodes_[j].value.version());
}

void Tape::backward(const Var& root, const Tensor& seed, bool accumulate_into_parameters) {
    check(root, "backward");
    if (forward_open_ && has_tangent(root.index()))
        throw std::logic_error(fmt::format(
            "backward: the root ('{}', node #{}) carries a tangent of the open forward level (jvp); the "
            "first-order sweep computes Tensors and would drop it; inside jvp take gradients with "
            "grad(…, {{.create_graph = true}}), whose recorded ops carry the tangent (docs/theory.md §11)",
            nodes_[root.index()].op, root.index()));
    require_defined(seed, "backward");
    if (!(seed.shape() == root.shape()))
        throw std::invalid_argument(
            fmt::format("backward: seed shape {} differs from the root's shape {}", seed.shape(), root.shape()));
    const bool detect = anomaly_detection_enabled();
    if (detect) detail::check_seed(*this, root.index(), seed);
    for (Node& n : nodes_) n.grad = Tensor();
    nodes_[root.index()].grad = seed.clone();
    for (std::size_t i = root.index() + 1; i-- > 0;) {
        Node& n = nodes_[i];
        if (!n.grad.defined()) continue;  // not on a path to the root
        if (n.parameter && accumulate_into_parameters) {
            Parameter& p = *n.parameter;
            if (!p.grad.defined() || !(p.grad.shape() == p.value.shape())) p.grad = Tensor::zeros(p.value.shape());
            add_into(p.grad, n.grad);
        }
        if (n.rule) {
            Backward context(*this, n);
            ReadOnlyWhileRuleRuns guard(n.grad);
            n.rule(n.state, context);
            if (detect) detail::check_backward(*this, static_cast<std::uint32_t>(i));
        }
    }
}

std::vector<Var> Tape::differentiate(const Var& root, const Var& seed, const std::vector<Var>& inputs) {
    check(root, "grad");
    if (!(seed.shape() == root.shape()))
        throw std::invalid_argument(
            fmt::format("grad: grad_output shape {} differs from the output's shape {}", seed.shape(), root.shape()));
    std::uint32_t lowest = root.index();
    for (const Var& in : inputs) {
        if (!in.requires_grad()) continue;  // a constant: its gradient is zeros
        check(in, "grad");
        lowest = std::min(lowest, in.index());
    }
    const bool detect = anomaly_detection_enabled();
    // One slot per node up to the root; nodes recorded by the rules land above the root and are never
    // visited. Nothing below the lowest input can reach an input, so the sweep stops there.
    std::vector<Var> grads(root.index() + 1);
    grads[root.index()] = seed;
    for (std::uint32_t i = root.index() + 1; i-- > lowest;) {
        if (!grads[i].value().defined()) continue;  // not on a path to the root
        // Copied out: the rule records new nodes, and nodes_ may reallocate under a reference.
        const Node& n = nodes_[i];
        if (!n.rule) continue;  // a leaf
        const auto var_rule = n.var_rule;
        void* const state = n.state;
        if (!var_rule)
            throw std::logic_error(fmt::format(
                "grad: op {} has no differentiable backward; create_graph needs a rule written over ops that "
                "also takes VarBackward& (a generic [](auto& ctx) rule, autograd/op.hpp)",
                n.op));
        const char* const op = n.op;
        const Var g = grads[i];  // a copy: the slot is not written while its own rule runs, but stay safe
        VarBackward context(*this, i, g, grads);
        if (!detect) {
            var_rule(state, context);
            continue;
        }
        // The ops a rule records are checked as they run (forward checks); the report then says whose
        // backward they belong to, and the gradients the rule produced are checked as on the fast path.
        try {
            var_rule(state, context);
        } catch (const AnomalyError& e) {
            throw AnomalyError(fmt::format("{}\n  while recording the backward (create_graph) of '{}' (tape #{})",
                                           e.what(), op, i),
                               op, i);
        }
        const Node& done = nodes_[i];
        for (std::uint32_t k = 0; k < done.n_inputs; ++k) {
            const std::uint32_t j = inputs_[done.first_input + k];
            const Tensor& gj = grads[j].value();
            if (!gj.defined()) continue;
            for (std::size_t e = 0; e < gj.numel(); ++e)
                if (!std::isfinite(gj.data()[e]))
                    throw AnomalyError(fmt::format("anomaly detected in the recorded backward pass (create_graph): "
                                                   "the backward rule of '{}' (tape #{}) gave input {} (#{}) a "
                                                   "non-finite gradient at element {} of {}",
                                                   op, i, k, j, e, gj.numel()),
                                       op, i);
        }
    }
    std::vector<Var> out;
    out.reserve(inputs.size());
    for (const Var& in : inputs) {
        const Var* g = in.requires_grad() ? &grads[in.index()] : nullptr;
        out.push_back(g && g->value().defined() ? *g : Var(Tensor::zeros(in.shape())));
    }
    return out;
}

Tensor Tape::grad(const Var& v) const {
    check(v, "grad");
    // A copy: gradient buffers may be shared between nodes (see accumulate).
    const Tensor& g = nodes_[v.index()].grad;
    return g.defined() ? g.clone() : Tensor::zeros(v.shape());
}

void Tape::clear() {
    destroy_states();
    nodes_.clear();  // keeps capacity: the next step records into the same slots
    inputs_.clear();
    input_versions_.clear();
    tangents_.clear();
    arena_block_ = 0;
    arena_used_ = 0;
    ++generation_;
}

std::size_t Tape::bytes() const {
    std::size_t total = nodes_.capacity() * sizeof(Node) + inputs_.capacity() * sizeof(std::uint32_t) +
                        arena_.size() * arena_block_bytes;
    for (const Node& n : nodes_) total += tensor_bytes(n.value) + tensor_bytes(n.grad);
    return total;
}

std::string Tape::dump() const {
    std::string out;
    auto it = std::back_inserter(out);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        fmt::format_to(it, "#{:<3} {:<12}", i, n.op);
        std::string args;
        for (std::uint32_t in : inputs(n)) args += fmt::format("{}#{}", args.empty() ? "" : ", ", in);
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
        for (std::uint32_t in : inputs(n)) fmt::format_to(it, "  n{} -> n{};\n", in, i);
    }
    out += "}\n";
    return out;
}

TapeScope::TapeScope(Tape& tape) : previous_(current_tape) { current_tape = &tape; }
TapeScope::~TapeScope() { current_tape = previous_; }

NoGrad::NoGrad() : previous_(grad_mode) { grad_mode = false; }
NoGrad::~NoGrad() { grad_mode = previous_; }

EnableGrad::EnableGrad() : previous_(grad_mode) { grad_mode = true; }
EnableGrad::~EnableGrad() { grad_mode = previous_; }

bool grad_enabled() { return grad_mode; }

Tensor Var::grad() const {
    if (!tape_) throw std::logic_error("Var::grad: this Var is a constant (not recorded on a tape)");
    return detail::live_tape(*this, "Var::grad")->grad(*this);
}

Tape* Var::tape() const { return detail::live_tape(*this, "Var::tape"); }

void Backward::accumulate(std::size_t k, Tensor gradient) { tape_.accumulate(index(k), std::move(gradient)); }

std::uint32_t VarBackward::index(std::size_t k) const { return tape_.input_index(tape_.nodes_[node_], k, "backward"); }

std::uint32_t Forward::index(std::size_t k) const { return tape_.input_index(tape_.nodes_[node_], k, "tangent"); }

Var Tape::var_at(std::uint32_t i) { return Var(nodes_[i].value, this, i, generation_); }

Var VarBackward::value() const {
    tape_.recorded_output(tape_.nodes_[node_]);
    return tape_.var_at(node_);
}
std::size_t VarBackward::n_inputs() const { return tape_.nodes_[node_].n_inputs; }
const char* VarBackward::op() const { return tape_.nodes_[node_].op; }
Tensor VarBackward::output_value() const { return tape_.recorded_output(tape_.nodes_[node_]); }
Tensor VarBackward::input_value(std::size_t k) const { return tape_.recorded_input(tape_.nodes_[node_], k); }
Shape VarBackward::input_shape(std::size_t k) const { return tape_.nodes_[index(k)].value.shape(); }
bool VarBackward::needs_grad(std::size_t k) const { return tape_.nodes_[index(k)].requires_grad; }

// A constant leaf (an operand that wanted no gradient) comes back as a constant Var.
Var VarBackward::input(std::size_t k) const {
    const Node& n = tape_.nodes_[node_];
    const Tensor& value = tape_.recorded_input(n, k);  // checks k
    const std::uint32_t j = tape_.inputs(n)[k];
    return tape_.nodes_[j].requires_grad ? tape_.var_at(j) : Var(value);
}

void VarBackward::accumulate(std::size_t k, Var gradient) {
    const std::uint32_t j = index(k);
    if (!tape_.nodes_[j].requires_grad) return;
    const Shape shape = tape_.nodes_[j].value.shape();  // a copy: sum_to records a node
    // Broadcasting undone as on the fast path, now by a recorded op.
    if (!(gradient.shape() == shape)) gradient = sum_to(gradient, shape);
    Var& slot = grads_[j];
    slot = slot.value().defined() ? add(slot, gradient) : std::move(gradient);
}

namespace detail {

Var Recorder::record(const char* op, Tensor value, Inputs inputs, void* rule, const RuleOps& ops, CallSite site,
                     TangentRule tangent) {
    Tape* tape = nullptr;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const Var& in = inputs[k];
        if (!in.requires_grad()) continue;
        if (!tape) {
            tape = live_tape(in, op);
        } else if (in.tape_id() != tape->id()) {
            live_tape(in, op);  // names a destroyed tape or another thread's
            throw std::logic_error(fmt::format("{}: inputs were recorded on different tapes", op));
        }
    }
    // Forward mode: decided before anything is pushed, so a refused op leaves the tape as it was.
    const bool tangent_live = tape && tape->forward_open_ && tape->tangent_reaches(inputs);
    if (tangent_live && !grad_mode)
        throw std::logic_error(fmt::format(
            "{}: an input carries a tangent of the open forward level (jvp), but NoGrad is active, so the op "
            "would not be recorded and the tangent would be dropped (J·v silently wrong); leave NoGrad off "
            "inside the function given to jvp, or compute the value from .value() as a constant",
            op));
    if (tangent_live && !tangent.invoke)
        throw std::logic_error(fmt::format(
            "{}: forward mode (jvp, jacobian by forward mode, hvp forward-over-reverse) reached this op, but it "
            "was recorded without a tangent rule; supply one: record(\"{}\", value, inputs, backward, tangent) "
            "with tangent(Forward&) returning the output's tangent (autograd/op.hpp)",
            op, op));
    if (!tape || !grad_mode) {
        if (anomaly_detection_enabled()) check_forward(op, value, inputs, nullptr, std::nullopt, site);
        return Var(std::move(value));
    }
    // Every input is checked before anything is pushed, so a rejected op leaves the tape as it was. The
    // loop above placed each on this tape; what is left to check is its generation (check() reports it).
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].requires_grad() && inputs[k].generation() != tape->generation_) tape->check(inputs[k], op);
    void* state = nullptr;
    if (ops.size) {
        state = tape->allocate_state(ops.size, ops.align);
        ops.relocate(state, rule);
    }
    const auto first = static_cast<std::uint32_t>(tape->inputs_.size());
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        const Var& in = inputs[k];
        // A constant operand gets a leaf of its own so the backward rule can read its value.
        tape->inputs_.push_back(in.requires_grad() ? in.index() : tape->push_leaf("constant", in.value(), false, nullptr));
        tape->input_versions_.push_back(in.value().version());
    }
    Node& n = tape->nodes_.emplace_back();
    n.op = op;
    n.first_input = first;
    n.n_inputs = static_cast<std::uint32_t>(inputs.size());
    n.requires_grad = true;
    n.value = value;
    n.rule = ops.invoke;
    n.var_rule = ops.invoke_var;
    n.destroy = ops.destroy;
    n.state = state;
    n.site = site;
    n.version = n.value.version();
    Var out(std::move(value), tape, static_cast<std::uint32_t>(tape->nodes_.size() - 1), tape->generation_);
    if (tangent_live) tape->propagate_tangent(out.index(), tangent);
    if (anomaly_detection_enabled()) check_forward(op, out.value(), inputs, tape, out.index(), site);
    return out;
}

}  // namespace detail

}  // namespace tapeflow
