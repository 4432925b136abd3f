#include "autograd/elementwise.hpp"

#include <cmath>

#include "autograd/op.hpp"
#include "tensor/broadcast.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/stable.hpp"

namespace tapeflow {

namespace {
using detail::map_binary;
using detail::map_ternary;
}  // namespace

// The backward rules are generic lambdas over ops that exist for Tensor and Var alike: the Tensor
// instance is the first-order fast path, the Var instance is the backward recorded under create_graph
// (autograd/op.hpp). Masks of piecewise ops are constants: their derivative is zero where it exists.

// d(a + b) = da + db. Broadcast operands get their gradient summed back by accumulate.
Var add(const Var& a, const Var& b, CallSite site) {
    return record("add", tapeflow::add(a.value(), b.value()), {a, b}, [](auto& ctx) {
        ctx.accumulate(0, ctx.grad());
        ctx.accumulate(1, ctx.grad());
    },
                  [](const Forward& t) { return t.tangent(0) + t.tangent(1); }, site);
}

// d(a − b) = da − db.
Var sub(const Var& a, const Var& b, CallSite site) {
    return record("sub", tapeflow::sub(a.value(), b.value()), {a, b}, [](auto& ctx) {
        ctx.accumulate(0, ctx.grad());
        ctx.accumulate(1, neg(ctx.grad()));
    },
                  [](const Forward& t) { return t.tangent(0) - t.tangent(1); }, site);
}

// d(a·b) = b·da + a·db.
Var mul(const Var& a, const Var& b, CallSite site) {
    return record("mul", tapeflow::mul(a.value(), b.value()), {a, b}, [](auto& ctx) {
        if (ctx.needs_grad(0)) ctx.accumulate(0, mul(ctx.grad(), ctx.input(1)));
        if (ctx.needs_grad(1)) ctx.accumulate(1, mul(ctx.grad(), ctx.input(0)));
    },
                  [](const Forward& t) {
                      if (!t.has_tangent(1)) return t.tangent(0) * t.input(1);
                      if (!t.has_tangent(0)) return t.input(0) * t.tangent(1);
                      return t.tangent(0) * t.input(1) + t.input(0) * t.tangent(1);
                  }, site);
}

// d(a/b) = da/b − (a/b²)·db = da/b − (out/b)·db.
Var div(const Var& a, const Var& b, CallSite site) {
    return record("div", tapeflow::div(a.value(), b.value()), {a, b}, [](auto& ctx) {
        const auto g_over_b = div(ctx.grad(), ctx.input(1));
        if (ctx.needs_grad(0)) ctx.accumulate(0, g_over_b);
        if (ctx.needs_grad(1)) ctx.accumulate(1, neg(mul(g_over_b, ctx.value())));
    },
                  [](const Forward& t) { return (t.tangent(0) - t.value() * t.tangent(1)) / t.input(1); }, site);
}

// d min(a, b) goes to the smaller operand; a tie splits it evenly (a subgradient, as PyTorch).
Var minimum(const Var& a, const Var& b, CallSite site) {
    return record("minimum", tapeflow::minimum(a.value(), b.value()), {a, b}, [](auto& ctx) {
        const Tensor share_a = map_binary(ctx.input_value(0), ctx.input_value(1),
                                          [](double u, double v) { return u < v ? 1.0 : u == v ? 0.5 : 0.0; }, "minimum");
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(share_a)));
        ctx.accumulate(1, mul(ctx.grad(), ctx.constant(1.0 - share_a)));
    },
                  [](const Forward& t) {
                      const Tensor share_a = map_binary(t.input(0), t.input(1),
                                                        [](double u, double v) { return u < v ? 1.0 : u == v ? 0.5 : 0.0; }, "minimum");
                      return share_a * t.tangent(0) + (1.0 - share_a) * t.tangent(1);
                  }, site);
}

// d max(a, b) goes to the larger operand; a tie splits it evenly.
Var maximum(const Var& a, const Var& b, CallSite site) {
    return record("maximum", tapeflow::maximum(a.value(), b.value()), {a, b}, [](auto& ctx) {
        const Tensor share_a = map_binary(ctx.input_value(0), ctx.input_value(1),
                                          [](double u, double v) { return u > v ? 1.0 : u == v ? 0.5 : 0.0; }, "maximum");
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(share_a)));
        ctx.accumulate(1, mul(ctx.grad(), ctx.constant(1.0 - share_a)));
    },
                  [](const Forward& t) {
                      const Tensor share_a = map_binary(t.input(0), t.input(1),
                                                        [](double u, double v) { return u > v ? 1.0 : u == v ? 0.5 : 0.0; }, "maximum");
                      return share_a * t.tangent(0) + (1.0 - share_a) * t.tangent(1);
                  }, site);
}

// An operator cannot take a defaulted parameter, so it records an empty CallSite: an anomaly report
// then names the nearest earlier op that has one (autograd/anomaly.hpp).
Var operator+(const Var& a, const Var& b) { return add(a, b, CallSite{}); }
Var operator-(const Var& a, const Var& b) { return sub(a, b, CallSite{}); }
Var operator*(const Var& a, const Var& b) { return mul(a, b, CallSite{}); }
Var operator/(const Var& a, const Var& b) { return div(a, b, CallSite{}); }
Var operator-(const Var& a) { return neg(a, CallSite{}); }

// d(a + s) = da.
Var operator+(const Var& a, double s) {
    return record("add_scalar", a.value() + s, {a}, [](auto& ctx) { ctx.accumulate(0, ctx.grad()); },
                  [](const Forward& t) { return t.tangent(0); }, CallSite{});
}
Var operator+(double s, const Var& a) { return a + s; }
Var operator-(const Var& a, double s) { return a + (-s); }
// d(s − a) = −da.
Var operator-(double s, const Var& a) {
    return record("rsub_scalar", s - a.value(), {a}, [](auto& ctx) { ctx.accumulate(0, neg(ctx.grad())); },
                  [](const Forward& t) { return tapeflow::neg(t.tangent(0)); },
                  CallSite{});
}
// d(s·a) = s·da.
Var operator*(const Var& a, double s) {
    return record("mul_scalar", a.value() * s, {a}, [s](auto& ctx) { ctx.accumulate(0, ctx.grad() * s); },
                  [s](const Forward& t) { return t.tangent(0) * s; },
                  CallSite{});
}
Var operator*(double s, const Var& a) { return a * s; }
// d(a/s) = da/s. Divides rather than multiplying by 1/s, which would round differently from the
// tensor op a / s.
Var operator/(const Var& a, double s) {
    return record("div_scalar", a.value() / s, {a}, [s](auto& ctx) { ctx.accumulate(0, ctx.grad() / s); },
                  [s](const Forward& t) { return t.tangent(0) / s; },
                  CallSite{});
}
// d(s/a) = −(s/a²)·da = −(out/a)·da.
Var operator/(double s, const Var& a) {
    return record("rdiv_scalar", s / a.value(), {a}, [](auto& ctx) {
        ctx.accumulate(0, neg(mul(ctx.grad(), div(ctx.value(), ctx.input(0)))));
    },
                  [](const Forward& t) { return tapeflow::neg(t.tangent(0) * (t.value() / t.input(0))); }, CallSite{});
}

// d(−a) = −da.
Var neg(const Var& a, CallSite site) {
    return record("neg", tapeflow::neg(a.value()), {a}, [](auto& ctx) { ctx.accumulate(0, neg(ctx.grad())); },
                  [](const Forward& t) { return tapeflow::neg(t.tangent(0)); }, site);
}

// d eᵃ = eᵃ·da: the backward reuses the output.
Var exp(const Var& a, CallSite site) {
    return record("exp", tapeflow::exp(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), ctx.value())); },
                  [](const Forward& t) { return t.tangent(0) * t.value(); }, site);
}

// d log a = da / a.
Var log(const Var& a, CallSite site) {
    return record("log", tapeflow::log(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, div(ctx.grad(), ctx.input(0))); },
                  [](const Forward& t) { return t.tangent(0) / t.input(0); }, site);
}

// d log(1 + a) = da / (1 + a).
Var log1p(const Var& a, CallSite site) {
    return record("log1p", tapeflow::log1p(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, div(ctx.grad(), ctx.input(0) + 1.0)); },
                  [](const Forward& t) { return t.tangent(0) / (t.input(0) + 1.0); }, site);
}

// d(eᵃ − 1) = eᵃ·da = (out + 1)·da.
Var expm1(const Var& a, CallSite site) {
    return record("expm1", tapeflow::expm1(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), ctx.value() + 1.0)); },
                  [](const Forward& t) { return t.tangent(0) * (t.value() + 1.0); }, site);
}

// d √a = da / (2√a).
Var sqrt(const Var& a, CallSite site) {
    return record("sqrt", tapeflow::sqrt(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, div(ctx.grad(), ctx.value() * 2.0)); },
                  [](const Forward& t) { return t.tangent(0) / (t.value() * 2.0); }, site);
}

// d a² = 2a·da.
Var square(const Var& a, CallSite site) {
    return record("square", tapeflow::square(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), ctx.input(0) * 2.0)); },
                  [](const Forward& t) { return t.tangent(0) * (t.input(0) * 2.0); }, site);
}

// d aᵖ = p·aᵖ⁻¹·da.
Var pow(const Var& a, double p, CallSite site) {
    return record("pow", tapeflow::pow(a.value(), p), {a}, [p](auto& ctx) {
        ctx.accumulate(0, mul(ctx.grad(), pow(ctx.input(0), p - 1) * p));
    },
                  [p](const Forward& t) { return t.tangent(0) * (tapeflow::pow(t.input(0), p - 1) * p); }, site);
}

// d|a| = sign(a)·da (0 at a = 0, a subgradient). The sign is piecewise constant: the second
// derivative is 0 on both sides of the kink, and undefined at 0 (docs/theory.md §11).
Var abs(const Var& a, CallSite site) {
    return record("abs", tapeflow::abs(a.value()), {a}, [](auto& ctx) {
        const Tensor sign = map(ctx.input_value(0), [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; });
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(sign)));
    },
                  [](const Forward& t) { return t.tangent(0) * map(t.input(0), [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }); }, site);
}

// d sin a = cos a·da.
Var sin(const Var& a, CallSite site) {
    return record("sin", tapeflow::sin(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), cos(ctx.input(0)))); },
                  [](const Forward& t) { return t.tangent(0) * tapeflow::cos(t.input(0)); }, site);
}

// d cos a = −sin a·da.
Var cos(const Var& a, CallSite site) {
    return record("cos", tapeflow::cos(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, neg(mul(ctx.grad(), sin(ctx.input(0))))); },
                  [](const Forward& t) { return tapeflow::neg(t.tangent(0) * tapeflow::sin(t.input(0))); }, site);
}

// d tanh a = (1 − tanh² a)·da.
Var tanh(const Var& a, CallSite site) {
    return record("tanh", tapeflow::tanh(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), 1.0 - square(ctx.value()))); },
                  [](const Forward& t) { return t.tangent(0) * (1.0 - tapeflow::square(t.value())); }, site);
}

// d σ(a) = σ(a)(1 − σ(a))·da.
Var sigmoid(const Var& a, CallSite site) {
    return record("sigmoid", tapeflow::sigmoid(a.value()), {a}, [](auto& ctx) {
        ctx.accumulate(0, mul(ctx.grad(), mul(ctx.value(), 1.0 - ctx.value())));
    },
                  [](const Forward& t) { return t.tangent(0) * (t.value() * (1.0 - t.value())); }, site);
}

// d relu(a) = [a > 0]·da; the mask is a constant (relu'' = 0 away from the kink at 0).
Var relu(const Var& a, CallSite site) {
    return record("relu", tapeflow::relu(a.value()), {a}, [](auto& ctx) {
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(map(ctx.input_value(0), [](double x) { return x > 0 ? 1.0 : 0.0; }))));
    },
                  [](const Forward& t) { return t.tangent(0) * map(t.input(0), [](double x) { return x > 0 ? 1.0 : 0.0; }); }, site);
}

// d leaky_relu(a) = (a > 0 ? 1 : slope)·da.
Var leaky_relu(const Var& a, double slope, CallSite site) {
    return record("leaky_relu", tapeflow::leaky_relu(a.value(), slope), {a}, [slope](auto& ctx) {
        const Tensor d = map(ctx.input_value(0), [slope](double x) { return x > 0 ? 1.0 : slope; });
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(d)));
    },
                  [slope](const Forward& t) { return t.tangent(0) * map(t.input(0), [slope](double x) { return x > 0 ? 1.0 : slope; }); }, site);
}

// d softplus(a) = σ(a)·da.
Var softplus(const Var& a, CallSite site) {
    return record("softplus", tapeflow::softplus(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), sigmoid(ctx.input(0)))); },
                  [](const Forward& t) { return t.tangent(0) * tapeflow::sigmoid(t.input(0)); }, site);
}

// d log σ(a) = (1 − σ(a))·da = σ(−a)·da.
Var log_sigmoid(const Var& a, CallSite site) {
    return record("log_sigmoid", tapeflow::log_sigmoid(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, mul(ctx.grad(), sigmoid(neg(ctx.input(0))))); },
                  [](const Forward& t) { return t.tangent(0) * tapeflow::sigmoid(tapeflow::neg(t.input(0))); }, site);
}

// d clamp(a, lo, hi) = [lo ≤ a ≤ hi]·da.
Var clamp(const Var& a, double lo, double hi, CallSite site) {
    return record("clamp", tapeflow::clamp(a.value(), lo, hi), {a}, [lo, hi](auto& ctx) {
        const Tensor inside = map(ctx.input_value(0), [lo, hi](double x) { return lo <= x && x <= hi ? 1.0 : 0.0; });
        ctx.accumulate(0, mul(ctx.grad(), ctx.constant(inside)));
    },
                  [lo, hi](const Forward& t) { return t.tangent(0) * map(t.input(0), [lo, hi](double x) { return lo <= x && x <= hi ? 1.0 : 0.0; }); }, site);
}

// d where(c, a, b) = c·da + (1 − c)·db, with c the 0/1 mask (kept in the node).
Var where(const Tensor& cond, const Var& a, const Var& b, CallSite site) {
    return record("where", tapeflow::where(cond, a.value(), b.value()), {a, b}, [c = cond](auto& ctx) {
        const Tensor taken = map(c, [](double m) { return m != 0 ? 1.0 : 0.0; });
        if (ctx.needs_grad(0)) ctx.accumulate(0, mul(ctx.grad(), ctx.constant(taken)));
        if (ctx.needs_grad(1)) ctx.accumulate(1, mul(ctx.grad(), ctx.constant(1.0 - taken)));
    },
                  [&cond](const Forward& t) { return tapeflow::where(cond, t.tangent(0), t.tangent(1)); }, site);
}

}  // namespace tapeflow
