#include "autograd/reduce.hpp"

#include <cmath>

#include "tensor/broadcast.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/stable.hpp"

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
// out[…, k, …] = Σ_{j ≥ k} g[…, j, …]: the transpose of cumsum, a running sum from the far end.
Tensor reverse_cumsum(const Tensor& g, int axis) {
    const std::size_t ax = normalize_axis(axis, g.rank(), "cumsum");
    std::size_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < g.rank(); ++i) {
        if (i < ax) outer *= g.shape()[i];
        if (i > ax) inner *= g.shape()[i];
    }
    const std::size_t n = g.shape()[ax];
    Tensor out(g.shape());
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t k = n; k-- > 0;) {
            const std::size_t row = (o * n + k) * inner;
            for (std::size_t i = 0; i < inner; ++i) out[row + i] = g[row + i] + (k + 1 < n ? out[row + inner + i] : 0.0);
        }
    return out;
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

// s = softmax(a):  da = s ⊙ (g − Σ_j g_j s_j), the softmax Jacobian diag(s) − s sᵀ applied to g.
Var softmax(const Var& a, int axis, CallSite site) {
    const Tensor lse = tapeflow::logsumexp(a.value(), axis, true);
    Tensor value = map_binary(a.value(), lse, [](double x, double l) { return std::exp(x - l); }, "softmax");
    return record("softmax", std::move(value), {a}, [](Tape& t, const Node& n) {
        const Tensor dot = tapeflow::sum(tapeflow::mul(n.grad, n.value), n.attributes.axis, true);
        t.accumulate(n.inputs[0], map_ternary(n.value, n.grad, dot, [](double s, double g, double d) { return s * (g - d); },
                                              "softmax"));
    }, {.axis = axis}, site);
}

// y = a − logsumexp(a):  da = g − e^y · Σ_j g_j.
Var log_softmax(const Var& a, int axis, CallSite site) {
    Tensor value = tapeflow::sub(a.value(), tapeflow::logsumexp(a.value(), axis, true));
    return record("log_softmax", std::move(value), {a}, [](Tape& t, const Node& n) {
        const Tensor total = tapeflow::sum(n.grad, n.attributes.axis, true);
        t.accumulate(n.inputs[0], map_ternary(n.grad, n.value, total,
                                              [](double g, double y, double s) { return g - std::exp(y) * s; },
                                              "log_softmax"));
    }, {.axis = axis}, site);
}

// out_k = Σ_{j ≤ k} a_j:  da_j = Σ_{k ≥ j} g_k.
Var cumsum(const Var& a, int axis, CallSite site) {
    return record("cumsum", tapeflow::cumsum(a.value(), axis), {a}, [](Tape& t, const Node& n) {
        t.accumulate(n.inputs[0], reverse_cumsum(n.grad, n.attributes.axis));
    }, {.axis = axis}, site);
}

// r = ‖a‖:  da = g · a / r, and 0 where r = 0.
Var norm(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("norm", tapeflow::norm(a.value(), axis, keepdim), {a}, [](Tape& t, const Node& n) {
        const Tensor& x = t.value(n.inputs[0]);
        const Tensor r = keepdim_view(n.value, x.shape(), n.attributes, false);
        const Tensor g = keepdim_view(n.grad, x.shape(), n.attributes, false);
        t.accumulate(n.inputs[0], map_ternary(x, r, g, [](double v, double norm, double gv) {
                         return norm > 0 ? gv * v / norm : 0.0;
                     }, "norm"));
    }, {.axis = axis}, site);
}

// out = log(eᵃ + eᵇ):  da = g·eᵃ/(eᵃ + eᵇ) = g·σ(a − b),  db = g·σ(b − a). Equal arguments (both −inf
// included, where a − b is NaN) share the gradient evenly.
Var log_add_exp(const Var& a, const Var& b, CallSite site) {
    Tensor value = map_binary(a.value(), b.value(), stable::log_add_exp, "log_add_exp");
    return record("log_add_exp", std::move(value), {a, b}, [](Tape& t, const Node& n) {
        const auto share = [](double g, double x, double y) { return x == y ? 0.5 * g : g * stable::sigmoid(x - y); };
        const Tensor& x = t.value(n.inputs[0]);
        const Tensor& y = t.value(n.inputs[1]);
        t.accumulate(n.inputs[0], map_ternary(n.grad, x, y, share, "log_add_exp"));
        t.accumulate(n.inputs[1], map_ternary(n.grad, y, x, share, "log_add_exp"));
    }, {}, site);
}

}  // namespace tapeflow
