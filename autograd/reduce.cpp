#include "autograd/reduce.hpp"

#include <cmath>

#include "autograd/elementwise.hpp"
#include "autograd/op.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/broadcast.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/softmax.hpp"
#include "tensor/stable.hpp"

namespace tapeflow {

namespace {
using detail::map_binary;
using detail::map_ternary;

// The shape of a reduced tensor with its reduced axis (or every axis, for a full reduction) kept as
// size 1, so that it broadcasts against the input of the reduction.
Shape keepdim_shape(const Shape& input, int axis, bool full) {
    Shape s = input;
    if (full) {
        for (std::size_t i = 0; i < s.rank(); ++i) s[i] = 1;
    } else {
        s[normalize_axis(axis, input.rank(), "reduce")] = 1;
    }
    return s;
}
// The rules below are generic over Tensor and Var (autograd/op.hpp): the reduced value or gradient is
// reshaped to the kept-dim shape by the reshape of its own kind.
template <class T>
T keepdim_view(const T& reduced, const Shape& input, int axis, bool full) {
    return reshape(reduced, keepdim_shape(input, axis, full));
}

// d/dx of a max or min: the upstream gradient split evenly among the entries equal to the extreme.
// Which entries those are is a constant (piecewise: the second derivative is 0 away from ties).
template <class Ctx>
void extreme_backward(Ctx& ctx, int axis, bool full) {
    const Tensor& x = ctx.input_value(0);
    const Tensor out = keepdim_view(ctx.output_value(), x.shape(), axis, full);
    const Tensor hit = map_binary(x, out, [](double v, double m) { return v == m ? 1.0 : 0.0; }, "max");
    const Tensor count = full ? tapeflow::sum(hit).reshape(out.shape()) : tapeflow::sum(hit, axis, true);
    const Tensor share = map_binary(hit, count, [](double h, double c) { return h / c; }, "max");
    ctx.accumulate(0, mul(keepdim_view(ctx.grad(), x.shape(), axis, full), ctx.constant(share)));
}

bool any_of(const Tensor& t, bool (*pred)(double)) {
    for (std::size_t i = 0; i < t.numel(); ++i)
        if (pred(t.data()[i])) return true;
    return false;
}

// d/dx_i log Σ_j e^{x_j} = e^{x_i − lse}: the softmax. An all −inf slice has no mass to distribute: its
// gradient is 0 (x − lse would be NaN there).
template <class Ctx>
void logsumexp_backward(Ctx& ctx, int axis, bool full) {
    const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
    const auto lse = keepdim_view(ctx.value(), in, axis, full);
    const auto g = keepdim_view(ctx.grad(), in, axis, full);
    if (!any_of(ctx.output_value(), [](double l) { return std::isinf(l) && l < 0; })) {
        ctx.accumulate(0, mul(g, exp(sub(ctx.input(0), lse))));
        return;
    }
    const Tensor ok = map_binary(ctx.input_value(0), keepdim_view(ctx.output_value(), in, axis, full),
                                 [](double, double l) { return std::isinf(l) && l < 0 ? 0.0 : 1.0; }, "logsumexp");
    const auto safe_lse = where(ok, broadcast_to(lse, in), ctx.constant(Tensor::zeros(in)));
    const auto weights = where(ok, exp(sub(ctx.input(0), safe_lse)), ctx.constant(Tensor::zeros(in)));
    ctx.accumulate(0, mul(g, weights));
}

// The tangent rules of the reductions (forward mode, autograd/forward.hpp). A reduced value along
// `axis` (or all axes) is returned in the output's own shape, whatever keepdim was.
Tensor reduced_like(const Tensor& t, const Tensor& out, int axis, bool full) {
    return (full ? tapeflow::sum(t) : tapeflow::sum(t, axis, true)).reshape(out.shape());
}
// ṁ = Σ share·ẋ over the entries equal to the extreme (the transpose of extreme_backward's split).
Tensor extreme_tangent(const Forward& t, int axis, bool full) {
    const Tensor& x = t.input(0);
    const Tensor out = t.value().reshape(keepdim_shape(x.shape(), axis, full));
    const Tensor hit = map_binary(x, out, [](double v, double m) { return v == m ? 1.0 : 0.0; }, "max");
    const Tensor count = full ? tapeflow::sum(hit).reshape(out.shape()) : tapeflow::sum(hit, axis, true);
    return reduced_like(hit / count * t.tangent(0), t.value(), axis, full);
}
// d lse = Σ_i softmax_i·ẋ_i; an all −inf slice has weight 0, as in the backward.
Tensor logsumexp_tangent(const Forward& t, int axis, bool full) {
    const Tensor& x = t.input(0);
    const Tensor lse = t.value().reshape(keepdim_shape(x.shape(), axis, full));
    const Tensor weights = map_binary(x, lse, [](double v, double l) {
        return std::isinf(l) && l < 0 ? 0.0 : std::exp(v - l);
    }, "logsumexp");
    return reduced_like(weights * t.tangent(0), t.value(), axis, full);
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
// The recorded twin: its own transpose is cumsum, so the pair differentiates to any order.
Var reverse_cumsum(const Var& g, int axis) {
    return record("reverse_cumsum", reverse_cumsum(g.value(), axis), {g},
                  [axis](auto& ctx) { ctx.accumulate(0, cumsum(ctx.grad(), axis)); },
                  [axis](const Forward& t) { return reverse_cumsum(t.tangent(0), axis); });
}
}  // namespace

// d Σx = 1 for every element: the scalar upstream gradient broadcast to x's shape.
Var sum(const Var& a, CallSite site) {
    return record("sum", tapeflow::sum(a.value()), {a}, [](auto& ctx) {
        ctx.accumulate(0, broadcast_to(ctx.grad(), ctx.input_shape(0)));
    },
                  [](const Forward& t) { return tapeflow::sum(t.tangent(0)); }, site);
}

Var sum(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("sum_axis", tapeflow::sum(a.value(), axis, keepdim), {a}, [axis](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        ctx.accumulate(0, broadcast_to(keepdim_view(ctx.grad(), in, axis, false), in));
    },
                  [axis, keepdim](const Forward& t) { return tapeflow::sum(t.tangent(0), axis, keepdim); }, site);
}

// Summing a broadcast back to `shape` (the reduction accumulate applies); its transpose is broadcast_to.
Var sum_to(const Var& a, const Shape& shape, CallSite site) {
    return record("sum_to", tapeflow::sum_to(a.value(), shape), {a}, [](auto& ctx) {
        ctx.accumulate(0, broadcast_to(ctx.grad(), ctx.input_shape(0)));
    },
                  [](const Forward& t) { return tapeflow::sum_to(t.tangent(0), t.value().shape()); }, site);
}

// d mean(x) = 1/n for every element.
Var mean(const Var& a, CallSite site) {
    return record("mean", tapeflow::mean(a.value()), {a}, [](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        ctx.accumulate(0, broadcast_to(ctx.grad() / static_cast<double>(in.numel()), in));
    },
                  [](const Forward& t) { return tapeflow::mean(t.tangent(0)); }, site);
}

Var mean(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("mean_axis", tapeflow::mean(a.value(), axis, keepdim), {a}, [axis](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        const double count = static_cast<double>(in[normalize_axis(axis, in.rank(), "mean")]);
        ctx.accumulate(0, broadcast_to(keepdim_view(ctx.grad(), in, axis, false) / count, in));
    },
                  [axis, keepdim](const Forward& t) { return tapeflow::mean(t.tangent(0), axis, keepdim); }, site);
}

Var max(const Var& a, CallSite site) {
    return record("max", tapeflow::max(a.value()), {a}, [](auto& ctx) { extreme_backward(ctx, 0, true); },
                  [](const Forward& t) { return extreme_tangent(t, 0, true); }, site);
}
Var max(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("max_axis", tapeflow::max(a.value(), axis, keepdim), {a},
                  [axis](auto& ctx) { extreme_backward(ctx, axis, false); },
                  [axis](const Forward& t) { return extreme_tangent(t, axis, false); }, site);
}
Var min(const Var& a, CallSite site) {
    return record("min", tapeflow::min(a.value()), {a}, [](auto& ctx) { extreme_backward(ctx, 0, true); },
                  [](const Forward& t) { return extreme_tangent(t, 0, true); }, site);
}
Var min(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("min_axis", tapeflow::min(a.value(), axis, keepdim), {a},
                  [axis](auto& ctx) { extreme_backward(ctx, axis, false); },
                  [axis](const Forward& t) { return extreme_tangent(t, axis, false); }, site);
}

Var logsumexp(const Var& a, CallSite site) {
    return record("logsumexp", tapeflow::logsumexp(a.value()), {a},
                  [](auto& ctx) { logsumexp_backward(ctx, 0, true); },
                  [](const Forward& t) { return logsumexp_tangent(t, 0, true); }, site);
}
Var logsumexp(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("logsumexp_axis", tapeflow::logsumexp(a.value(), axis, keepdim), {a},
                  [axis](auto& ctx) { logsumexp_backward(ctx, axis, false); },
                  [axis](const Forward& t) { return logsumexp_tangent(t, axis, false); }, site);
}

// s = softmax(a):  da = s ⊙ (g − Σ_j g_j s_j), the softmax Jacobian diag(s) − s sᵀ applied to g. The
// first-order rule is one fused pass per row (tensor/softmax.hpp); the recorded one (create_graph) is the
// same formula over Var ops, so the backward can be differentiated again.
namespace {
struct SoftmaxBackward {
    int axis;
    void operator()(Backward& ctx) const { ctx.accumulate(0, softmax_backward(ctx.value(), ctx.grad(), axis)); }
    void operator()(VarBackward& ctx) const {
        const Var s = ctx.value();
        const Var dot = sum(mul(ctx.grad(), s), axis, true);
        ctx.accumulate(0, mul(s, sub(ctx.grad(), dot)));
    }
};

// y = a − logsumexp(a):  da = g − e^y · Σ_j g_j, fused on the first-order path as above.
struct LogSoftmaxBackward {
    int axis;
    void operator()(Backward& ctx) const { ctx.accumulate(0, log_softmax_backward(ctx.value(), ctx.grad(), axis)); }
    void operator()(VarBackward& ctx) const {
        const Var total = sum(ctx.grad(), axis, true);
        ctx.accumulate(0, sub(ctx.grad(), mul(exp(ctx.value()), total)));
    }
};
}  // namespace

Var softmax(const Var& a, int axis, CallSite site) {
    return record("softmax", tapeflow::softmax(a.value(), axis), {a}, SoftmaxBackward{axis},
                  [axis](const Forward& t) {
                      // ṡ = s ⊙ (ȧ − Σ_j s_j ȧ_j)
                      const Tensor& s = t.value();
                      return s * (t.tangent(0) - tapeflow::sum(s * t.tangent(0), axis, true));
                  }, site);
}

Var log_softmax(const Var& a, int axis, CallSite site) {
    return record("log_softmax", tapeflow::log_softmax(a.value(), axis), {a}, LogSoftmaxBackward{axis},
                  [axis](const Forward& t) {
                      // ẏ = ȧ − Σ_j e^{y_j} ȧ_j
                      return t.tangent(0) - tapeflow::sum(tapeflow::exp(t.value()) * t.tangent(0), axis, true);
                  }, site);
}

// out_k = Σ_{j ≤ k} a_j:  da_j = Σ_{k ≥ j} g_k.
Var cumsum(const Var& a, int axis, CallSite site) {
    return record("cumsum", tapeflow::cumsum(a.value(), axis), {a}, [axis](auto& ctx) {
        ctx.accumulate(0, reverse_cumsum(ctx.grad(), axis));
    },
                  [axis](const Forward& t) { return tapeflow::cumsum(t.tangent(0), axis); }, site);
}

// r = ‖a‖:  da = g · a / r, and 0 where r = 0 (there the denominator is replaced by 1 before dividing,
// so that no NaN reaches the second derivative either).
Var norm(const Var& a, int axis, bool keepdim, CallSite site) {
    return record("norm", tapeflow::norm(a.value(), axis, keepdim), {a}, [axis](auto& ctx) {
        const Shape in = ctx.input_shape(0);  // a copy: the Var context returns one by value
        const auto r = keepdim_view(ctx.value(), in, axis, false);
        const auto g = keepdim_view(ctx.grad(), in, axis, false);
        if (!any_of(ctx.output_value(), [](double v) { return v == 0.0; })) {
            ctx.accumulate(0, mul(g, div(ctx.input(0), r)));
            return;
        }
        const Tensor pos = map(keepdim_view(ctx.output_value(), in, axis, false), [](double v) { return v > 0 ? 1.0 : 0.0; });
        const auto safe_r = where(pos, r, ctx.constant(Tensor::ones(pos.shape())));
        const auto share = div(ctx.input(0), safe_r);
        ctx.accumulate(0, mul(g, where(broadcast_to(pos, in), share, ctx.constant(Tensor::zeros(in)))));
    },
                  [axis](const Forward& t) {
                      // ṙ = Σ a·ȧ / r, and 0 where r = 0 (the backward's convention)
                      const Tensor r = t.value().reshape(keepdim_shape(t.input(0).shape(), axis, false));
                      const Tensor share = map_binary(t.input(0), r, [](double a, double n) { return n > 0 ? a / n : 0.0; }, "norm");
                      return reduced_like(share * t.tangent(0), t.value(), axis, false);
                  }, site);
}

// out = log(eᵃ + eᵇ):  da = g·eᵃ/(eᵃ + eᵇ) = g·σ(a − b),  db = g·σ(b − a). Equal arguments share the
// gradient evenly (σ(0) = ½); both −inf, where a − b is NaN, too (the difference is taken as 0).
Var log_add_exp(const Var& a, const Var& b, CallSite site) {
    Tensor value = map_binary(a.value(), b.value(), stable::log_add_exp, "log_add_exp");
    return record("log_add_exp", std::move(value), {a, b}, [](auto& ctx) {
        auto diff = sub(ctx.input(0), ctx.input(1));
        const Tensor& d = value_of(diff);
        if (any_of(d, [](double v) { return std::isnan(v); })) {
            const Tensor ok = map(d, [](double v) { return std::isnan(v) ? 0.0 : 1.0; });
            diff = where(ok, diff, ctx.constant(Tensor::zeros(d.shape())));
        }
        ctx.accumulate(0, mul(ctx.grad(), sigmoid(diff)));
        ctx.accumulate(1, mul(ctx.grad(), sigmoid(neg(diff))));
    },
                  [](const Forward& t) {
                      // σ(a − b)·ȧ + σ(b − a)·ḃ, with a − b taken as 0 where it is NaN (both −inf)
                      const Tensor d = map_binary(t.input(0), t.input(1), [](double a, double b) {
                          const double v = a - b;
                          return std::isnan(v) ? 0.0 : v;
                      }, "log_add_exp");
                      return tapeflow::sigmoid(d) * t.tangent(0) + tapeflow::sigmoid(tapeflow::neg(d)) * t.tangent(1);
                  }, site);
}

}  // namespace tapeflow
