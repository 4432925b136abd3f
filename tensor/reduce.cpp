#include "tensor/reduce.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "tensor/broadcast.hpp"

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

Tensor sum_to(const Tensor& a, const Shape& shape) {
    require_sums_to(a, shape);
    if (a.shape() == shape) return a;
    Tensor out = Tensor::zeros(shape);
    double* po = out.data();
    const double* pa = a.data();
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
