#include "tensor/reduce.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include "tensor/broadcast.hpp"
#include "tensor/softmax.hpp"

namespace tapeflow {

namespace {

// A tensor reduced along `axis` is viewed as [outer, n, inner]; the result is [outer, inner].
struct AxisView {
    std::size_t outer = 1, n = 1, inner = 1;
    Shape result;
};

AxisView axis_view(const Tensor& a, int axis, bool keepdim, std::string_view op) {
    require_defined(a, op);
    const std::size_t ax = normalize_axis(axis, a.rank(), op);
    AxisView v;
    for (std::size_t i = 0; i < a.rank(); ++i) {
        if (i < ax) v.outer *= a.shape()[i];
        if (i > ax) v.inner *= a.shape()[i];
        if (i != ax) v.result.push_back(a.shape()[i]);
        else if (keepdim) v.result.push_back(1);
    }
    v.n = a.shape()[ax];
    return v;
}

// Folds `step(acc, x)` over the reduced axis, starting from `init`, then applies `finish(acc)`.
template <class Step, class Finish>
Tensor reduce_axis(const Tensor& a, int axis, bool keepdim, std::string_view op, double init, Step step,
                   Finish finish) {
    const AxisView v = axis_view(a, axis, keepdim, op);
    Tensor out(v.result);
    const double* pa = a.data();
    double* po = out.data();
    for (std::size_t o = 0; o < v.outer; ++o) {
        double* row = po + o * v.inner;
        for (std::size_t i = 0; i < v.inner; ++i) row[i] = init;
        // Walk the reduced axis in the outer loop so the inner loop is contiguous.
        for (std::size_t k = 0; k < v.n; ++k) {
            const double* src = pa + (o * v.n + k) * v.inner;
            for (std::size_t i = 0; i < v.inner; ++i) row[i] = step(row[i], src[i]);
        }
        for (std::size_t i = 0; i < v.inner; ++i) row[i] = finish(row[i]);
    }
    return out;
}

void require_nonempty(const Tensor& a, std::string_view op) {
    require_defined(a, op);
    if (a.numel() == 0) throw std::invalid_argument(fmt::format("{}: the tensor {} is empty", op, a.shape()));
}

// Reducing an axis of length 0 has no value for max/min/mean (sum is 0, as in NumPy).
void require_nonempty_axis(const Tensor& a, int axis, std::string_view op) {
    require_defined(a, op);
    if (a.shape()[normalize_axis(axis, a.rank(), op)] == 0)
        throw std::invalid_argument(fmt::format("{}: axis {} of shape {} is empty", op, axis, a.shape()));
}

constexpr double inf = std::numeric_limits<double>::infinity();
double keep(double x) { return x; }
double take_max(double acc, double x) { return x > acc || std::isnan(x) ? x : acc; }
double take_min(double acc, double x) { return x < acc || std::isnan(x) ? x : acc; }

// sum_to's precondition, shared by the fast path and its reference: `shape` broadcasts to a.shape().
void require_sums_to(const Tensor& a, const Shape& shape) {
    require_defined(a, "sum_to");
    if (!(broadcast_shapes(shape, a.shape(), "sum_to") == a.shape()))
        throw std::invalid_argument(
            fmt::format("sum_to: shape {} does not broadcast to {}, so {} cannot be summed back to it",
                        shape, a.shape(), a.shape()));
}

}  // namespace

Tensor sum(const Tensor& a) {
    require_defined(a, "sum");
    double s = 0;
    for (double x : a.span()) s += x;
    return Tensor::scalar(s);
}

Tensor sum(const Tensor& a, int axis, bool keepdim) {
    return reduce_axis(a, axis, keepdim, "sum", 0.0, [](double acc, double x) { return acc + x; }, keep);
}

Tensor mean(const Tensor& a) {
    require_nonempty(a, "mean");
    return Tensor::scalar(sum(a).item() / static_cast<double>(a.numel()));
}

Tensor mean(const Tensor& a, int axis, bool keepdim) {
    require_nonempty_axis(a, axis, "mean");
    const double n = static_cast<double>(a.size(axis));
    return reduce_axis(a, axis, keepdim, "mean", 0.0, [](double acc, double x) { return acc + x; },
                       [n](double s) { return s / n; });
}

Tensor max(const Tensor& a) {
    require_nonempty(a, "max");
    double m = -inf;
    for (double x : a.span()) m = take_max(m, x);
    return Tensor::scalar(m);
}

Tensor max(const Tensor& a, int axis, bool keepdim) {
    require_nonempty_axis(a, axis, "max");
    return reduce_axis(a, axis, keepdim, "max", -inf, take_max, keep);
}

Tensor min(const Tensor& a) {
    require_nonempty(a, "min");
    double m = inf;
    for (double x : a.span()) m = take_min(m, x);
    return Tensor::scalar(m);
}

Tensor min(const Tensor& a, int axis, bool keepdim) {
    require_nonempty_axis(a, axis, "min");
    return reduce_axis(a, axis, keepdim, "min", inf, take_min, keep);
}

Tensor argmax(const Tensor& a, int axis, bool keepdim) {
    require_nonempty_axis(a, axis, "argmax");
    const AxisView v = axis_view(a, axis, keepdim, "argmax");
    Tensor out(v.result);
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t i = 0; i < v.inner; ++i) {
            std::size_t best = 0;
            for (std::size_t k = 1; k < v.n; ++k)
                if (a[(o * v.n + k) * v.inner + i] > a[(o * v.n + best) * v.inner + i]) best = k;
            out[o * v.inner + i] = static_cast<double>(best);
        }
    return out;
}

Tensor logsumexp(const Tensor& a) {
    require_nonempty(a, "logsumexp");
    const double m = max(a).item();
    if (std::isinf(m)) return Tensor::scalar(m);  // all −inf, or a +inf entry dominates
    double s = 0;
    for (double x : a.span()) s += std::exp(x - m);
    return Tensor::scalar(m + std::log(s));
}

Tensor logsumexp(const Tensor& a, int axis, bool keepdim) {
    require_nonempty_axis(a, axis, "logsumexp");
    const Tensor m = max(a, axis, true);
    // A row whose max is ±inf shifts by 0 instead, so that no inf − inf NaN appears.
    const Tensor shift = detail::map_unary(m, [](double x) { return std::isinf(x) ? 0.0 : x; });
    const Tensor sums = sum(detail::map_binary(a, shift, [](double x, double s) { return std::exp(x - s); }, "logsumexp"),
                            axis, true);
    Tensor out = detail::map_binary(sums, shift, [](double s, double c) { return c + std::log(s); }, "logsumexp");
    if (keepdim) return out;
    Shape squeezed;
    const std::size_t ax = normalize_axis(axis, a.rank(), "logsumexp");
    for (std::size_t i = 0; i < a.rank(); ++i)
        if (i != ax) squeezed.push_back(a.shape()[i]);
    return out.reshape(squeezed);
}

namespace {
// Calls row(first, stride) for every row of `a` along the axis: its entries are first[0], first[stride],
// …, first[(n − 1)·stride]. The stride is a compile-time 1 for the last axis (the common case), so those
// loops are plain contiguous loops.
template <class Row>
void for_each_axis_row(const AxisView& v, Row&& row) {
    if (v.inner == 1) {
        for (std::size_t o = 0; o < v.outer; ++o) row(o * v.n, std::integral_constant<std::size_t, 1>{});
        return;
    }
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t i = 0; i < v.inner; ++i) row(o * v.n * v.inner + i, v.inner);
}

// The shift of a softmax row: its maximum, or 0 when that is ±inf (as logsumexp: no inf − inf); NaN
// stays NaN.
template <class Stride>
double row_shift(const double* x, std::size_t n, Stride stride) {
    double m = -inf;
    for (std::size_t k = 0; k < n; ++k) m = take_max(m, x[k * stride]);
    return std::isinf(m) ? 0.0 : m;
}

// The vector-Jacobian product of a row map whose Jacobian is a diagonal plus a rank-one term:
// out_j = apply(y_j, g_j, c) with c = Σ_k weigh(y_k, g_k) over the row of y (the op's output).
template <class Weigh, class Apply>
Tensor row_vjp(const Tensor& y, const Tensor& g, int axis, std::string_view op, Weigh weigh, Apply apply) {
    const AxisView v = axis_view(y, axis, true, op);
    require_defined(g, op);
    if (!(y.shape() == g.shape()))
        throw std::invalid_argument(
            fmt::format("{}: the gradient's shape {} differs from the output's shape {}", op, g.shape(), y.shape()));
    Tensor out(y.shape());
    const double* py = y.data();
    const double* pg = g.data();
    double* po = out.data();
    for_each_axis_row(v, [&](std::size_t first, auto stride) {
        double c = 0;
        for (std::size_t k = 0; k < v.n; ++k) c += weigh(py[first + k * stride], pg[first + k * stride]);
        for (std::size_t k = 0; k < v.n; ++k) {
            const std::size_t j = first + k * stride;
            po[j] = apply(py[j], pg[j], c);
        }
    });
    return out;
}

// Applies row(x, y, n, stride) to every row along the axis: it reads the input row at x and writes
// the output row at y (n entries, `stride` apart).
template <class Row>
Tensor map_axis_rows(const Tensor& a, int axis, std::string_view op, Row&& row) {
    const AxisView v = axis_view(a, axis, true, op);
    Tensor out(a.shape());
    const double* pa = a.data();
    double* po = out.data();
    for_each_axis_row(v, [&](std::size_t first, auto stride) { row(pa + first, po + first, v.n, stride); });
    return out;
}
}  // namespace

Tensor softmax(const Tensor& a, int axis) {
    return map_axis_rows(a, axis, "softmax", [](const double* x, double* s, std::size_t n, auto stride) {
        const double shift = row_shift(x, n, stride);
        double total = 0;
        for (std::size_t k = 0; k < n; ++k) {
            const double e = std::exp(x[k * stride] - shift);
            s[k * stride] = e;
            total += e;
        }
        for (std::size_t k = 0; k < n; ++k) s[k * stride] /= total;
    });
}

Tensor log_softmax(const Tensor& a, int axis) {
    return map_axis_rows(a, axis, "log_softmax", [](const double* x, double* y, std::size_t n, auto stride) {
        const double shift = row_shift(x, n, stride);
        double total = 0;
        for (std::size_t k = 0; k < n; ++k) total += std::exp(x[k * stride] - shift);
        const double lse = shift + std::log(total);
        for (std::size_t k = 0; k < n; ++k) y[k * stride] = x[k * stride] - lse;
    });
}

Tensor softmax_backward(const Tensor& s, const Tensor& g, int axis) {
    return row_vjp(s, g, axis, "softmax_backward", [](double sk, double gk) { return gk * sk; },
                   [](double sj, double gj, double dot) { return sj * (gj - dot); });
}

Tensor log_softmax_backward(const Tensor& y, const Tensor& g, int axis) {
    return row_vjp(y, g, axis, "log_softmax_backward", [](double, double gk) { return gk; },
                   [](double yj, double gj, double total) { return gj - std::exp(yj) * total; });
}

Tensor cumsum(const Tensor& a, int axis) {
    const AxisView v = axis_view(a, axis, true, "cumsum");
    Tensor out(a.shape());
    const double* pa = a.data();
    double* po = out.data();
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t k = 0; k < v.n; ++k) {
            const std::size_t row = (o * v.n + k) * v.inner;
            for (std::size_t i = 0; i < v.inner; ++i) po[row + i] = pa[row + i] + (k ? po[row - v.inner + i] : 0.0);
        }
    return out;
}

Tensor norm(const Tensor& a, int axis, bool keepdim) {
    const Tensor scale = max(detail::map_unary(a, [](double x) { return std::abs(x); }), axis, true);
    // A zero (or non-finite) scale is left as 1: the zero vector has norm 0, and inf/NaN propagate.
    const Tensor safe = detail::map_unary(scale, [](double m) { return m > 0 && std::isfinite(m) ? m : 1.0; });
    const Tensor squares = sum(detail::map_binary(a, safe, [](double x, double m) { return (x / m) * (x / m); }, "norm"),
                               axis, keepdim);
    return detail::map_binary(squares, keepdim ? safe : safe.reshape(squares.shape()),
                              [](double s, double m) { return m * std::sqrt(s); }, "norm");
}

namespace {
// The shapes a backward pass sums back most: summed over leading axes ([B, C] → [C], a bias), over
// trailing axes ([B, C] → [B, 1], a per-row scale), or both ([B, C, H, W] → [C, 1, 1]). Then `a` is
// [before, kept, after] with the target [kept], and a contiguous loop replaces the row walk (whose
// per-row bookkeeping dominates when rows are short, as the 2-wide rows of a planar flow).
struct KeptBlock {
    bool matches = false;
    std::size_t before = 1, kept = 1, after = 1;
};

KeptBlock kept_block(const Shape& from, const Shape& to) {
    KeptBlock b;
    const std::size_t offset = from.rank() - to.rank();
    int phase = 0;  // 0: in the leading summed axes, 1: in the kept ones, 2: in the trailing summed ones
    for (std::size_t i = 0; i < from.rank(); ++i) {
        const std::size_t n = from[i], target = i < offset ? 1 : to[i - offset];
        if (n == 1) continue;  // an axis of size 1 belongs to any block
        if (target == n) {
            if (phase == 2) return b;  // kept, summed, kept again: not one block
            phase = 1;
            b.kept *= n;
        } else if (phase == 0) {
            b.before *= n;
        } else {
            phase = 2;
            b.after *= n;
        }
    }
    b.matches = true;
    return b;
}
// out[j] = Σ_r a[r·stride + j] for the W columns j < W of `rows` rows, in the rows' order, with the
// accumulators in registers (W fixed, so the loop has no aliasing or trip-count checks per row).
template <std::size_t W>
void add_columns_of(const double* a, std::size_t rows, std::size_t stride, double* out) {
    std::array<double, W> acc{};
    for (std::size_t r = 0; r < rows; ++r, a += stride)
        for (std::size_t j = 0; j < W; ++j) acc[j] += a[j];
    for (std::size_t j = 0; j < W; ++j) out[j] = acc[j];
}

constexpr std::size_t column_tile = 8;

void add_columns(const double* a, std::size_t rows, std::size_t stride, std::size_t width, double* out) {
    switch (width) {
        case 1: return add_columns_of<1>(a, rows, stride, out);
        case 2: return add_columns_of<2>(a, rows, stride, out);
        case 3: return add_columns_of<3>(a, rows, stride, out);
        case 4: return add_columns_of<4>(a, rows, stride, out);
        case 5: return add_columns_of<5>(a, rows, stride, out);
        case 6: return add_columns_of<6>(a, rows, stride, out);
        case 7: return add_columns_of<7>(a, rows, stride, out);
        default: return add_columns_of<column_tile>(a, rows, stride, out);
    }
}

// out[k] += Σ_i a[k·n + i] for k < runs: each run of n contiguous entries adds into one element, in
// order. Short runs (the 2-wide rows of a planar flow) get a fixed-length loop.
template <std::size_t N>
void add_runs_of(const double* a, std::size_t runs, double* out) {
    for (std::size_t k = 0; k < runs; ++k, a += N) {
        double acc = out[k];
        for (std::size_t i = 0; i < N; ++i) acc += a[i];
        out[k] = acc;
    }
}

void add_runs(const double* a, std::size_t runs, std::size_t n, double* out) {
    switch (n) {
        case 2: return add_runs_of<2>(a, runs, out);
        case 3: return add_runs_of<3>(a, runs, out);
        case 4: return add_runs_of<4>(a, runs, out);
        default:
            for (std::size_t k = 0; k < runs; ++k, a += n) {
                double acc = out[k];
                for (std::size_t i = 0; i < n; ++i) acc += a[i];
                out[k] = acc;
            }
    }
}
}  // namespace

Tensor sum_to(const Tensor& a, const Shape& shape) {
    require_sums_to(a, shape);
    if (a.shape() == shape) return a;
    Tensor out = Tensor::zeros(shape);
    double* po = out.data();
    const double* pa = a.data();
    // Each target element adds its sources in a's row-major order, as sum_to_reference does, so the
    // fast paths give the same bits.
    if (const KeptBlock b = kept_block(a.shape(), shape); b.matches) {
        if (b.after == 1) {
            // Column sums of a [before, kept] matrix, a tile of up to 8 columns at a time.
            for (std::size_t k = 0; k < b.kept; k += column_tile)
                add_columns(pa + k, b.before, b.kept, std::min(column_tile, b.kept - k), po + k);
            return out;
        }
        for (std::size_t o = 0; o < b.before; ++o)
            add_runs(pa + o * b.kept * b.after, b.kept, b.after, po);
        return out;
    }
    // Walk `a` a row at a time; each element lands on the target element it was broadcast from. The
    // additions happen in the same order as in sum_to_reference, so the results are identical.
    detail::for_each_broadcast_row<1>(a.shape(), {&shape},
                                      [&](std::size_t i, const std::array<std::size_t, 1>& at, std::size_t n,
                                          const std::array<std::size_t, 1>& step) {
                                          const double* row = pa + i;
                                          double* target = po + at[0];
                                          if (step[0] == 1) {
                                              for (std::size_t j = 0; j < n; ++j) target[j] += row[j];
                                          } else {  // the whole row sums into one element
                                              double acc = *target;
                                              for (std::size_t j = 0; j < n; ++j) acc += row[j];
                                              *target = acc;
                                          }
                                      });
    return out;
}

namespace detail {

Tensor sum_to_reference(const Tensor& a, const Shape& shape) {
    require_sums_to(a, shape);
    if (a.shape() == shape) return a;
    Tensor out = Tensor::zeros(shape);
    double* po = out.data();
    const double* pa = a.data();
    for_each_broadcast<1>(a.shape(), {&shape}, [&](std::size_t i, const std::array<std::size_t, 1>& at) {
        po[at[0]] += pa[i];
    });
    return out;
}

}  // namespace detail

}  // namespace tapeflow
