#include "autograd/forward.hpp"

#include <stdexcept>

#include "autograd/op.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/format.hpp"

namespace tapeflow {

ForwardLevel::ForwardLevel(Tape& tape) : tape_(tape) {
    if (tape_.forward_open_)
        throw std::logic_error(fmt::format(
            "jvp: a forward level is already open on tape #{}; forward levels do not nest on one tape (forward "
            "over forward would need tangents of tangents): take the outer derivative in reverse mode (hvp, "
            "grad with create_graph) or on a separate tape (autograd/forward.hpp)",
            tape_.id()));
    tape_.forward_open_ = true;
}

ForwardLevel::~ForwardLevel() {
    tape_.forward_open_ = false;
    tape_.tangents_.clear();
}

void ForwardLevel::seed(const Var& x, const Tensor& tangent) {
    tape_.check(x, "jvp");
    require_defined(tangent, "jvp");
    if (!(tangent.shape() == x.shape()))
        throw std::invalid_argument(
            fmt::format("jvp: the tangent has shape {}, the Var it seeds has {}", tangent.shape(), x.shape()));
    if (tape_.tangents_.size() <= x.index()) tape_.tangents_.resize(tape_.nodes_.size());
    tape_.tangents_[x.index()] = tangent;
}

Tensor ForwardLevel::tangent(const Var& y) const {
    if (!y.requires_grad()) return Tensor::zeros(y.shape());
    tape_.check(y, "jvp");
    return tape_.has_tangent(y.index()) ? tape_.tangents_[y.index()].clone() : Tensor::zeros(y.shape());
}

bool Tape::tangent_reaches(const detail::Inputs& inputs) const {
    for (std::size_t k = 0; k < inputs.size(); ++k)
        if (inputs[k].requires_grad() && has_tangent(inputs[k].index())) return true;
    return false;
}

void Tape::propagate_tangent(std::uint32_t index, const detail::TangentRule& rule) {
    Forward context(*this, index);
    Tensor t = rule.invoke(rule.rule, context);
    const Node& n = nodes_[index];
    if (!t.defined())
        throw std::logic_error(fmt::format("{}: the tangent rule returned an empty tensor", n.op));
    if (!(t.shape() == n.value.shape())) {
        try {
            t = tapeflow::broadcast_to(t, n.value.shape());
        } catch (const std::invalid_argument&) {
            throw std::logic_error(fmt::format("{}: the tangent rule returned shape {}, the output has shape {}", n.op,
                                               t.shape(), n.value.shape()));
        }
    }
    if (tangents_.size() <= index) tangents_.resize(nodes_.size());
    tangents_[index] = std::move(t);
}

const Tensor& Forward::value() const { return tape_.nodes_[node_].value; }
std::size_t Forward::n_inputs() const { return tape_.nodes_[node_].n_inputs; }
const Tensor& Forward::input(std::size_t k) const { return tape_.nodes_[index(k)].value; }
bool Forward::has_tangent(std::size_t k) const { return tape_.has_tangent(index(k)); }
Tensor Forward::tangent(std::size_t k) const {
    const std::uint32_t j = index(k);
    return tape_.has_tangent(j) ? tape_.tangents_[j] : Tensor::zeros(tape_.nodes_[j].value.shape());
}
const char* Forward::op() const { return tape_.nodes_[node_].op; }

}  // namespace tapeflow
