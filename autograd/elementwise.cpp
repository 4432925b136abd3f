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

// d(a + b) = da + db. Broadcast operands get their gradient summed back by accumulate.
Var add(const Var& a, const Var& b, CallSite site) {
    return record("add", tapeflow::add(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        ctx.accumulate(0, ctx.grad());
        ctx.accumulate(1, ctx.grad());
    }, site);
}

// d(a − b) = da − db.
Var sub(const Var& a, const Var& b, CallSite site) {
    return record("sub", tapeflow::sub(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        ctx.accumulate(0, ctx.grad());
        ctx.accumulate(1, tapeflow::neg(ctx.grad()));
    }, site);
}

// d(a·b) = b·da + a·db.
Var mul(const Var& a, const Var& b, CallSite site) {
    return record("mul", tapeflow::mul(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), ctx.input(1)));
        ctx.accumulate(1, tapeflow::mul(ctx.grad(), ctx.input(0)));
    }, site);
}

// d(a/b) = da/b − (a/b²)·db = da/b − (out/b)·db.
Var div(const Var& a, const Var& b, CallSite site) {
    return record("div", tapeflow::div(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        const Tensor& b = ctx.input(1);
        ctx.accumulate(0, tapeflow::div(ctx.grad(), b));
        ctx.accumulate(1, map_ternary(ctx.grad(), ctx.value(), b,
                                              [](double g, double q, double y) { return -g * q / y; }, "div"));
    }, site);
}

// d min(a, b) goes to the smaller operand; a tie splits it evenly (a subgradient, as PyTorch).
Var minimum(const Var& a, const Var& b, CallSite site) {
    return record("minimum", tapeflow::minimum(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        const Tensor& x = ctx.input(0);
        const Tensor& y = ctx.input(1);
        const Tensor share_a = map_binary(x, y, [](double u, double v) { return u < v ? 1.0 : u == v ? 0.5 : 0.0; }, "minimum");
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), share_a));
        ctx.accumulate(1, tapeflow::mul(ctx.grad(), 1.0 - share_a));
    }, site);
}

// d max(a, b) goes to the larger operand; a tie splits it evenly.
Var maximum(const Var& a, const Var& b, CallSite site) {
    return record("maximum", tapeflow::maximum(a.value(), b.value()), {a, b}, [](Backward& ctx) {
        const Tensor& x = ctx.input(0);
        const Tensor& y = ctx.input(1);
        const Tensor share_a = map_binary(x, y, [](double u, double v) { return u > v ? 1.0 : u == v ? 0.5 : 0.0; }, "maximum");
        ctx.accumulate(0, tapeflow::mul(ctx.grad(), share_a));
        ctx.accumulate(1, tapeflow::mul(ctx.grad(), 1.0 - share_a));
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
    return record("add_scalar", a.value() + s, {a}, [](Backward& ctx) { ctx.accumulate(0, ctx.grad()); },
                  CallSite{});
}
Var operator+(double s, const Var& a) { return a + s; }
Var operator-(const Var& a, double s) { return a + (-s); }
// d(s − a) = −da.
Var operator-(double s, const Var& a) {
    return record("rsub_scalar", s - a.value(), {a},
                  [](Backward& ctx) { ctx.accumulate(0, tapeflow::neg(ctx.grad())); }, CallSite{});
}
// d(s·a) = s·da.
Var operator*(const Var& a, double s) {
    return record("mul_scalar", a.value() * s, {a},
                  [s](Backward& ctx) { ctx.accumulate(0, ctx.grad() * s); },
                  CallSite{});
}
Var operator*(double s, const Var& a) { return a * s; }
// d(a/s) = da/s. Divides rather than multiplying by 1/s, which would round differently from the
// tensor op a / s.
Var operator/(const Var& a, double s) {
    return record("div_scalar", a.value() / s, {a},
                  [s](Backward& ctx) { ctx.accumulate(0, ctx.grad() / s); },
                  CallSite{});
}
// d(s/a) = −(s/a²)·da = −(out/a)·da.
Var operator/(double s, const Var& a) {
    return record("rdiv_scalar", s / a.value(), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_ternary(ctx.grad(), ctx.value(), ctx.input(0),
                                              [](double g, double q, double x) { return -g * q / x; }, "rdiv"));
    }, CallSite{});
}

// d(−a) = −da.
Var neg(const Var& a, CallSite site) {
    return record("neg", tapeflow::neg(a.value()), {a},
                  [](Backward& ctx) { ctx.accumulate(0, tapeflow::neg(ctx.grad())); }, site);
}

// d eᵃ = eᵃ·da: the backward reuses the output.
Var exp(const Var& a, CallSite site) {
    return record("exp", tapeflow::exp(a.value()), {a},
                  [](Backward& ctx) { ctx.accumulate(0, tapeflow::mul(ctx.grad(), ctx.value())); }, site);
}

// d log a = da / a.
Var log(const Var& a, CallSite site) {
    return record("log", tapeflow::log(a.value()), {a},
                  [](Backward& ctx) { ctx.accumulate(0, tapeflow::div(ctx.grad(), ctx.input(0))); }, site);
}

// d log(1 + a) = da / (1 + a).
Var log1p(const Var& a, CallSite site) {
    return record("log1p", tapeflow::log1p(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double x) { return g / (1 + x); }, "log1p"));
    }, site);
}

// d(eᵃ − 1) = eᵃ·da = (out + 1)·da.
Var expm1(const Var& a, CallSite site) {
    return record("expm1", tapeflow::expm1(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.value(), [](double g, double y) { return g * (y + 1); }, "expm1"));
    }, site);
}

// d √a = da / (2√a).
Var sqrt(const Var& a, CallSite site) {
    return record("sqrt", tapeflow::sqrt(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.value(), [](double g, double r) { return g / (2 * r); }, "sqrt"));
    }, site);
}

// d a² = 2a·da.
Var square(const Var& a, CallSite site) {
    return record("square", tapeflow::square(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double x) { return 2 * x * g; }, "square"));
    }, site);
}

// d aᵖ = p·aᵖ⁻¹·da.
Var pow(const Var& a, double p, CallSite site) {
    return record("pow", tapeflow::pow(a.value(), p), {a}, [p](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [p](double g, double x) { return g * p * std::pow(x, p - 1); }, "pow"));
    }, site);
}

// d|a| = sign(a)·da (0 at a = 0, a subgradient).
Var abs(const Var& a, CallSite site) {
    return record("abs", tapeflow::abs(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [](double g, double x) { return x > 0 ? g : x < 0 ? -g : 0.0; }, "abs"));
    }, site);
}

// d sin a = cos a·da.
Var sin(const Var& a, CallSite site) {
    return record("sin", tapeflow::sin(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double x) { return g * std::cos(x); }, "sin"));
    }, site);
}

// d cos a = −sin a·da.
Var cos(const Var& a, CallSite site) {
    return record("cos", tapeflow::cos(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double x) { return -g * std::sin(x); }, "cos"));
    }, site);
}

// d tanh a = (1 − tanh² a)·da.
Var tanh(const Var& a, CallSite site) {
    return record("tanh", tapeflow::tanh(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.value(), [](double g, double y) { return g * (1 - y * y); }, "tanh"));
    }, site);
}

// d σ(a) = σ(a)(1 − σ(a))·da.
Var sigmoid(const Var& a, CallSite site) {
    return record("sigmoid", tapeflow::sigmoid(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.value(), [](double g, double s) { return g * s * (1 - s); }, "sigmoid"));
    }, site);
}

// d relu(a) = [a > 0]·da.
Var relu(const Var& a, CallSite site) {
    return record("relu", tapeflow::relu(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0), [](double g, double x) { return x > 0 ? g : 0.0; }, "relu"));
    }, site);
}

// d leaky_relu(a) = (a > 0 ? 1 : slope)·da.
Var leaky_relu(const Var& a, double slope, CallSite site) {
    return record("leaky_relu", tapeflow::leaky_relu(a.value(), slope), {a}, [slope](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [slope](double g, double x) { return x > 0 ? g : slope * g; }, "leaky_relu"));
    }, site);
}

// d softplus(a) = σ(a)·da.
Var softplus(const Var& a, CallSite site) {
    return record("softplus", tapeflow::softplus(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [](double g, double x) { return g * stable::sigmoid(x); }, "softplus"));
    }, site);
}

// d log σ(a) = (1 − σ(a))·da = σ(−a)·da.
Var log_sigmoid(const Var& a, CallSite site) {
    return record("log_sigmoid", tapeflow::log_sigmoid(a.value()), {a}, [](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [](double g, double x) { return g * stable::sigmoid(-x); }, "log_sigmoid"));
    }, site);
}

// d clamp(a, lo, hi) = [lo ≤ a ≤ hi]·da.
Var clamp(const Var& a, double lo, double hi, CallSite site) {
    return record("clamp", tapeflow::clamp(a.value(), lo, hi), {a}, [lo, hi](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), ctx.input(0),
                                             [lo, hi](double g, double x) { return lo <= x && x <= hi ? g : 0.0; }, "clamp"));
    }, site);
}

// d where(c, a, b) = c·da + (1 − c)·db, with c the 0/1 mask (kept in the node).
Var where(const Tensor& cond, const Var& a, const Var& b, CallSite site) {
    return record("where", tapeflow::where(cond, a.value(), b.value()), {a, b}, [c = cond](Backward& ctx) {
        ctx.accumulate(0, map_binary(ctx.grad(), c, [](double g, double m) { return m != 0 ? g : 0.0; }, "where"));
        ctx.accumulate(1, map_binary(ctx.grad(), c, [](double g, double m) { return m != 0 ? 0.0 : g; }, "where"));
    }, site);
}

}  // namespace tapeflow
