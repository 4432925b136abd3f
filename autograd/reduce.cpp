#include "autograd/reduce.hpp"

#include <cmath>

#include "tensor/broadcast.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow {

namespace {
using detail::map_binary;
using detail::map_ternary;

// A reduced tensor seen with its reduced axis (or every axis, for a full reduction) kept as size 1,
// so it broadcasts against the input of the reduction.
Tensor keepdim_view(const Tensor& reduced, const Shape& input, const NodeAttributes& a, bool full) {
    Shape s = input;
    if (full) {
        for (std::size_t i = 0; i < s.rank(); ++i) s[i] = 1;
    } else {
        s[normalize_axis(a.axis, input.rank(), "reduce")] = 1;
    }
    return reduced.reshape(s);
}

// d/dx of a max or min: the upstream gradient split evenly among the entries equal to the extreme.
void extreme_backward(Tape& t, const Node& n, bool full) {
    const Tensor& x = t.value(n.inputs[0]);
    const Tensor out = keepdim_view(n.value, x.shape(), n.attributes, full);
    const Tensor g = keepdim_view(n.grad, x.shape(), n.attributes, full);
    const Tensor hit = map_binary(x, out, [](double v, double m) { return v == m ? 1.0 : 0.0; }, "max");
    const Tensor count = full ? tapeflow::sum(hit).reshape(out.shape()) : tapeflow::sum(hit, n.attributes.axis, true);
    t.accumulate(n.inputs[0], map_ternary(hit, g, count, [](double h, double gv, double c) { return h * gv / c; }, "max"));
}

void logsumexp_backward(Tape& t, const Node& n, bool full) {
    // d/dx_i log Σ_j e^{x_j} = e^{x_i − lse}: the softmax.
    const Tensor& x = t.value(n.inputs[0]);
    const Tensor lse = keepdim_view(n.value, x.shape(), n.attributes, full);
    const Tensor g = keepdim_view(n.grad, x.shape(), n.attributes, full);
    t.accumulate(n.inputs[0], map_ternary(x, lse, g, [](double v, double l, double gv) {
                     // An all −inf row has no mass to distribute.
                     return std::isinf(l) && l < 0 ? 0.0 : gv * std::exp(v - l);
                 }, "logsumexp"));
}
}  // namespace

// d Σx = 1 for every element: the scalar upstream gradient broadcast to x's shape.
Var sum(const Var& a, CallSite site) {
    return record("sum", tapeflow::sum(a.value()), {a}, [](Tape& t, const Node& n) {
        t.accumulate(n.inputs[0], broadcast_to(n.grad, t.value(n.inputs[0]).shape()));
    }, {}, site);
}

Var sum(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("sum_axis", tapeflow::sum(a.value(), axis, keepdim), {a}, [](Tape& t, const Node& n) {
        const Shape& in = t.value(n.inputs[0]).shape();
        t.accumulate(n.inputs[0], broadcast_to(keepdim_view(n.grad, in, n.attributes, false), in));
    }, {.axis = axis, .keepdim = keepdim}, site);
}

// d mean(x) = 1/n for every element.
Var mean(const Var& a, CallSite site) {
    return record("mean", tapeflow::mean(a.value()), {a}, [](Tape& t, const Node& n) {
        const Tensor& x = t.value(n.inputs[0]);
        t.accumulate(n.inputs[0], Tensor::full(x.shape(), n.grad.item() / static_cast<double>(x.numel())));
    }, {}, site);
}

Var mean(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("mean_axis", tapeflow::mean(a.value(), axis, keepdim), {a}, [](Tape& t, const Node& n) {
        const Shape& in = t.value(n.inputs[0]).shape();
        const double count = static_cast<double>(in[normalize_axis(n.attributes.axis, in.rank(), "mean")]);
        t.accumulate(n.inputs[0], broadcast_to(keepdim_view(n.grad, in, n.attributes, false) / count, in));
    }, {.axis = axis, .keepdim = keepdim}, site);
}

Var max(const Var& a, CallSite site) {
    return record("max", tapeflow::max(a.value()), {a}, [](Tape& t, const Node& n) { extreme_backward(t, n, true); }, {}, site);
}
Var max(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("max_axis", tapeflow::max(a.value(), axis, keepdim), {a},
                  [](Tape& t, const Node& n) { extreme_backward(t, n, false); }, {.axis = axis, .keepdim = keepdim}, site);
}
Var min(const Var& a, CallSite site) {
    return record("min", tapeflow::min(a.value()), {a}, [](Tape& t, const Node& n) { extreme_backward(t, n, true); }, {}, site);
}
Var min(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("min_axis", tapeflow::min(a.value(), axis, keepdim), {a},
                  [](Tape& t, const Node& n) { extreme_backward(t, n, false); }, {.axis = axis, .keepdim = keepdim}, site);
}

Var logsumexp(const Var& a, CallSite site) {
    return record("logsumexp", tapeflow::logsumexp(a.value()), {a},
                  [](Tape& t, const Node& n) { logsumexp_backward(t, n, true); }, {}, site);
}
Var logsumexp(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("logsumexp_axis", tapeflow::logsumexp(a.value(), axis, keepdim), {a},
                  [](Tape& t, const Node& n) { logsumexp_backward(t, n, false); }, {.axis = axis, .keepdim = keepdim}, site);
}

}  // namespace tapeflow
