#include "autograd/anomaly.hpp"

#include <cmath>
#include <iterator>

#include "tensor/format.hpp"

namespace tapeflow {

namespace detail {
thread_local constinit bool anomaly_mode = false;
}  // namespace detail

DetectAnomaly::DetectAnomaly(bool enabled) : previous_(detail::anomaly_mode) { detail::anomaly_mode = enabled; }
DetectAnomaly::~DetectAnomaly() { detail::anomaly_mode = previous_; }

namespace detail {

namespace {

// The first non-finite element of t, if any.
std::optional<std::size_t> first_non_finite(const Tensor& t) {
    if (!t.defined()) return std::nullopt;
    const double* p = t.data();
    for (std::size_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(p[i])) return i;
    return std::nullopt;
}

const char* kind(double v) { return std::isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }

std::string finiteness(const Tensor& t) {
    const auto bad = first_non_finite(t);
    return bad ? fmt::format("holds {} at element {}", kind(t.data()[*bad]), *bad) : "finite";
}

std::string describe_site(CallSite site) {
    return fmt::format("{}:{} in {}", site.file_name(), site.line(), site.function_name());
}

// Where node `index` was recorded; an operator has no line of its own, so the nearest earlier node
// with one stands in for it.
std::string where_recorded(const Tape* tape, std::optional<std::uint32_t> index, CallSite site) {
    if (site.line() != 0) return "recorded at " + describe_site(site);
    if (tape && index)
        for (std::uint32_t j = *index; j-- > 0;) {
            const Node& earlier = tape->node(j);
            if (earlier.site.line() != 0)
                return fmt::format("recorded by an operator (no line of its own) after '{}' (tape #{}) at {}",
                                   earlier.op, j, describe_site(earlier.site));
        }
    return "recorded by an operator (no line of its own), with no earlier op on the tape that has one";
}

// "#0 variable [3] (finite), #4 constant [] (holds NaN at element 0)".
std::string describe_inputs(const Tape& tape, const Node& n) {
    std::string out;
    auto it = std::back_inserter(out);
    const auto ids = tape.inputs(n);
    for (std::uint32_t k = 0; k < n.n_inputs; ++k) {
        const Node& in = tape.node(ids[k]);
        fmt::format_to(it, "{}#{} {} {} ({})", k ? ", " : "", ids[k], in.op, in.value.shape(), finiteness(in.value));
    }
    return n.n_inputs ? out : "none";
}

}  // namespace

void check_forward(const char* op, const Tensor& value, Inputs inputs, const Tape* tape,
                   std::optional<std::uint32_t> index, CallSite site) {
    const auto bad = first_non_finite(value);
    if (!bad) return;
    std::string ins;
    if (tape && index) {
        ins = describe_inputs(*tape, tape->node(*index));
    } else {
        for (std::size_t k = 0; k < inputs.size(); ++k)
            ins += fmt::format("{}input {} {} ({})", k ? ", " : "", k, inputs[k].shape(), finiteness(inputs[k].value()));
        ins += " (not recorded: no input needs a gradient, or NoGrad is active)";
    }
    const std::string node = index ? fmt::format("tape #{}", *index) : "not on the tape";
    throw AnomalyError(fmt::format("anomaly detected in the forward pass: '{}' ({}) produced {} at element {} of {}\n"
                                   "  {}\n  output {}; inputs: {}",
                                   op, node, kind(value.data()[*bad]), *bad, value.numel(),
                                   where_recorded(tape, index, site), value.shape(), ins),
                       op, index);
}

void check_seed(const Tape& tape, std::uint32_t root, const Tensor& seed) {
    const auto bad = first_non_finite(seed);
    if (!bad) return;
    const Node& n = tape.node(root);
    throw AnomalyError(fmt::format("anomaly detected in the backward pass: the seed for '{}' (tape #{}) holds {} at "
                                   "element {} of {}",
                                   n.op, root, kind(seed.data()[*bad]), *bad, seed.numel()),
                       n.op, root);
}

void check_backward(const Tape& tape, std::uint32_t index) {
    const Node& n = tape.node(index);
    const auto ids = tape.inputs(n);
    for (std::uint32_t k = 0; k < n.n_inputs; ++k) {
        const Node& in = tape.node(ids[k]);
        const auto bad = first_non_finite(in.grad);
        if (!bad) continue;
        throw AnomalyError(
            fmt::format("anomaly detected in the backward pass: the backward rule of '{}' (tape #{}) gave input {} "
                        "(#{} {} {}) a gradient with {} at element {} of {}\n"
                        "  {}\n  output {}, upstream gradient {}; inputs: {}",
                        n.op, index, k, ids[k], in.op, in.value.shape(), kind(in.grad.data()[*bad]), *bad,
                        in.grad.numel(), where_recorded(&tape, index, n.site), n.value.shape(), finiteness(n.grad),
                        describe_inputs(tape, n)),
            n.op, index);
    }
}

}  // namespace detail

}  // namespace tapeflow
