#include "tensor/elementwise.hpp"

#include <cmath>
#include <stdexcept>

#include "tensor/broadcast.hpp"
#include "tensor/stable.hpp"

namespace tapeflow {

using detail::map_binary;
using detail::map_ternary;

namespace {
template <class F>
Tensor unary(const Tensor& a, std::string_view op, F&& f) {
    require_defined(a, op);
    return detail::map_unary(a, f);
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x + y; }, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x - y; }, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x * y; }, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x / y; }, "div"); }
// A NaN operand gives NaN, as torch.minimum / numpy.minimum (std::fmin would drop it and hide the
// NaN from every check downstream).
Tensor minimum(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, [](double x, double y) { return x <= y || std::isnan(x) ? x : y; }, "minimum");
}
Tensor maximum(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, [](double x, double y) { return x >= y || std::isnan(x) ? x : y; }, "maximum");
}
Tensor pow(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, [](double x, double y) { return std::pow(x, y); }, "pow");
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return unary(a, "add", [s](double x) { return x + s; }); }
Tensor operator+(double s, const Tensor& a) { return a + s; }
Tensor operator-(const Tensor& a, double s) { return unary(a, "sub", [s](double x) { return x - s; }); }
Tensor operator-(double s, const Tensor& a) { return unary(a, "sub", [s](double x) { return s - x; }); }
Tensor operator*(const Tensor& a, double s) { return unary(a, "mul", [s](double x) { return x * s; }); }
Tensor operator*(double s, const Tensor& a) { return a * s; }
Tensor operator/(const Tensor& a, double s) { return unary(a, "div", [s](double x) { return x / s; }); }
Tensor operator/(double s, const Tensor& a) { return unary(a, "div", [s](double x) { return s / x; }); }
Tensor operator-(const Tensor& a) { return neg(a); }

Tensor neg(const Tensor& a) { return unary(a, "neg", [](double x) { return -x; }); }
Tensor exp(const Tensor& a) { return unary(a, "exp", [](double x) { return std::exp(x); }); }
Tensor log(const Tensor& a) { return unary(a, "log", [](double x) { return std::log(x); }); }
Tensor log1p(const Tensor& a) { return unary(a, "log1p", [](double x) { return std::log1p(x); }); }
Tensor expm1(const Tensor& a) { return unary(a, "expm1", [](double x) { return std::expm1(x); }); }
Tensor sqrt(const Tensor& a) { return unary(a, "sqrt", [](double x) { return std::sqrt(x); }); }
Tensor square(const Tensor& a) { return unary(a, "square", [](double x) { return x * x; }); }
Tensor pow(const Tensor& a, double p) { return unary(a, "pow", [p](double x) { return std::pow(x, p); }); }
Tensor abs(const Tensor& a) { return unary(a, "abs", [](double x) { return std::abs(x); }); }
Tensor sin(const Tensor& a) { return unary(a, "sin", [](double x) { return std::sin(x); }); }
Tensor cos(const Tensor& a) { return unary(a, "cos", [](double x) { return std::cos(x); }); }
Tensor tanh(const Tensor& a) { return unary(a, "tanh", [](double x) { return std::tanh(x); }); }
Tensor sigmoid(const Tensor& a) { return unary(a, "sigmoid", stable::sigmoid); }
// NaN stays NaN (as PyTorch): `x > 0 ? x : 0` would turn it into 0 and hide a NaN weight.
Tensor relu(const Tensor& a) { return unary(a, "relu", [](double x) { return x <= 0 ? 0.0 : x; }); }
Tensor leaky_relu(const Tensor& a, double slope) {
    return unary(a, "leaky_relu", [slope](double x) { return x > 0 ? x : slope * x; });
}
Tensor softplus(const Tensor& a) { return unary(a, "softplus", stable::softplus); }
Tensor log_sigmoid(const Tensor& a) { return unary(a, "log_sigmoid", stable::log_sigmoid); }

Tensor clamp(const Tensor& a, double lo, double hi) {
    if (!(lo <= hi))
        throw std::invalid_argument(fmt::format("clamp: lower bound {} exceeds upper bound {}", lo, hi));
    return unary(a, "clamp", [lo, hi](double x) { return std::min(std::max(x, lo), hi); });
}

Tensor lt(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x < y ? 1.0 : 0.0; }, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x <= y ? 1.0 : 0.0; }, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x > y ? 1.0 : 0.0; }, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x >= y ? 1.0 : 0.0; }, "ge"); }
Tensor eq(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x == y ? 1.0 : 0.0; }, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return map_binary(a, b, [](double x, double y) { return x != y ? 1.0 : 0.0; }, "ne"); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    return map_ternary(cond, a, b, [](double c, double x, double y) { return c != 0 ? x : y; }, "where");
}

void add_into(Tensor& dst, const Tensor& src, double alpha) {
    require_defined(dst, "add_into");
    require_defined(src, "add_into");
    double* pd = dst.data();
    const double* ps = src.data();
    if (dst.shape() == src.shape()) {
        for (std::size_t i = 0, n = dst.numel(); i < n; ++i) pd[i] += alpha * ps[i];
        return;
    }
    if (!(broadcast_shapes(dst.shape(), src.shape(), "add_into") == dst.shape()))
        throw std::invalid_argument(fmt::format(
            "add_into: source shape {} does not broadcast to destination shape {}", src.shape(), dst.shape()));
    detail::for_each_broadcast<1>(dst.shape(), {&src.shape()},
                                  [&](std::size_t o, const std::array<std::size_t, 1>& at) {
                                      pd[o] += alpha * ps[at[0]];
                                  });
}

bool all_finite(const Tensor& a) {
    require_defined(a, "all_finite");
    for (double v : a.span())
        if (!std::isfinite(v)) return false;
    return true;
}

}  // namespace tapeflow
