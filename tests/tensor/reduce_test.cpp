#include "tensor/reduce.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/softmax.hpp"
#include "tests/helpers.hpp"

using tapeflow::Shape;
using tapeflow::Tensor;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double quiet_nan = std::numeric_limits<double>::quiet_NaN();
const double ln2 = std::numbers::ln2;

using tapeflow::testing::values;

// The values along `axis` for each position of the other axes (row-major), gathered by unravelling
// every flat index: independent of the [outer, n, inner] view the library uses.
std::vector<std::vector<double>> fibers(const Tensor& a, std::size_t axis) {
    const Shape& s = a.shape();
    std::vector<std::vector<double>> out(a.numel() / s[axis]);
    for (std::size_t flat = 0; flat < a.numel(); ++flat) {
        std::size_t rest = flat, reduced_index = 0, place = 1;
        for (std::size_t i = s.rank(); i-- > 0;) {
            const std::size_t coordinate = rest % s[i];
            rest /= s[i];
            if (i == axis) continue;
            reduced_index += coordinate * place;
            place *= s[i];
        }
        out[reduced_index].push_back(a[flat]);
    }
    return out;
}

Shape reduced_shape(const Shape& s, std::size_t axis, bool keepdim) {
    Shape r;
    for (std::size_t i = 0; i < s.rank(); ++i)
        if (i != axis) r.push_back(s[i]);
        else if (keepdim) r.push_back(1);
    return r;
}

double ref_sum(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s;
}
double ref_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double ref_min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double ref_argmax(const std::vector<double>& v) {
    return static_cast<double>(std::max_element(v.begin(), v.end()) - v.begin());  // first maximum
}
double ref_logsumexp(const std::vector<double>& v) {
    const double m = ref_max(v);
    double s = 0;
    for (double x : v) s += std::exp(x - m);
    return m + std::log(s);
}

}  // namespace

TEST_CASE("reductions of a 2×3 matrix match hand-computed values") {
    const Tensor x{{1, 2, 3}, {4, 5, 6}};
    CHECK(tapeflow::sum(x).shape() == Shape{});
    CHECK(tapeflow::sum(x).item() == 21);
    CHECK(values(tapeflow::sum(x, 0)) == std::vector<double>{5, 7, 9});
    CHECK(values(tapeflow::sum(x, 1)) == std::vector<double>{6, 15});
    CHECK(values(tapeflow::sum(x, -1)) == std::vector<double>{6, 15});
    CHECK(tapeflow::sum(x, 0).shape() == Shape{3});
    CHECK(tapeflow::sum(x, 0, true).shape() == Shape{1, 3});
    CHECK(tapeflow::sum(x, 1, true).shape() == Shape{2, 1});
    CHECK(tapeflow::mean(x).item() == 3.5);
    CHECK(values(tapeflow::mean(x, 0)) == std::vector<double>{2.5, 3.5, 4.5});
    CHECK(values(tapeflow::mean(x, 1, true)) == std::vector<double>{2, 5});
    CHECK(tapeflow::max(x).item() == 6);
    CHECK(tapeflow::min(x).item() == 1);
    CHECK(values(tapeflow::max(x, 0)) == std::vector<double>{4, 5, 6});
    CHECK(values(tapeflow::min(x, 1)) == std::vector<double>{1, 4});
    CHECK(values(tapeflow::argmax(x, 1)) == std::vector<double>{2, 2});
    CHECK(values(tapeflow::argmax(x, 0)) == std::vector<double>{1, 1, 1});
    CHECK(tapeflow::argmax(x, 0, true).shape() == Shape{1, 3});
    // logsumexp of [ln 1, ln 2, ln 3] is ln 6.
    const Tensor logs{0, ln2, std::log(3.0)};
    CHECK(std::abs(tapeflow::logsumexp(logs).item() - std::log(6.0)) <= 4.5e-16);
    CHECK(std::abs(tapeflow::logsumexp(logs, 0).item() - std::log(6.0)) <= 4.5e-16);
}

TEST_CASE("reducing a 1-D tensor along its axis gives a 0-d tensor; keepdim gives [1]") {
    const Tensor v{3, -1, 2};
    CHECK(tapeflow::sum(v, 0).shape() == Shape{});
    CHECK(tapeflow::sum(v, 0).item() == 4);
    CHECK(tapeflow::max(v, -1, true).shape() == Shape{1});
    CHECK(tapeflow::argmax(v, 0).item() == 0);
    CHECK(tapeflow::logsumexp(v, 0).shape() == Shape{});
    CHECK(tapeflow::logsumexp(v, 0, true).shape() == Shape{1});
    const Tensor s = Tensor::scalar(4);
    CHECK(tapeflow::sum(s).item() == 4);
    CHECK(tapeflow::max(s).item() == 4);
    CHECK(tapeflow::logsumexp(s).item() == 4);
}

TEST_CASE("every reduction over every axis of a 3-D tensor matches a reference, with and without keepdim") {
    // Values 0..23 scattered (7 is coprime to 24) so maxima sit at different positions along each axis.
    Tensor x(Shape{2, 3, 4});
    for (std::size_t i = 0; i < 24; ++i) x[i] = static_cast<double>((i * 7) % 24) - 11.5;
    struct Op {
        const char* name;
        Tensor (*reduce)(const Tensor&, int, bool);
        double (*reference)(const std::vector<double>&);
        double tol;
    };
    const std::vector<Op> ops{
        {"sum", tapeflow::sum, ref_sum, 0},
        {"mean", tapeflow::mean,
         [](const std::vector<double>& v) { return ref_sum(v) / static_cast<double>(v.size()); }, 0},
        {"max", tapeflow::max, ref_max, 0},
        {"min", tapeflow::min, ref_min, 0},
        {"argmax", tapeflow::argmax, ref_argmax, 0},
        {"logsumexp", tapeflow::logsumexp, ref_logsumexp, 1e-14},
    };
    for (const Op& op : ops)
        for (int axis = -3; axis < 3; ++axis)
            for (bool keepdim : {false, true}) {
                CAPTURE(op.name);
                CAPTURE(axis);
                CAPTURE(keepdim);
                const std::size_t ax = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
                const Tensor r = op.reduce(x, axis, keepdim);
                REQUIRE(r.shape() == reduced_shape(x.shape(), ax, keepdim));
                const auto f = fibers(x, ax);
                for (std::size_t i = 0; i < f.size(); ++i) CHECK(std::abs(r[i] - op.reference(f[i])) <= op.tol);
            }
    CHECK(tapeflow::sum(x).item() == 0);  // symmetric around 0: −11.5 … 11.5
    CHECK(tapeflow::max(x).item() == 11.5);
    CHECK(tapeflow::min(x).item() == -11.5);
    CHECK(std::abs(tapeflow::logsumexp(x).item() - ref_logsumexp(x.to_vector())) <= 1e-14);
}

TEST_CASE("argmax returns the first of tied maxima") {
    const Tensor x{{1, 3, 3}, {5, 5, 2}};
    CHECK(values(tapeflow::argmax(x, 1)) == std::vector<double>{1, 0});
    CHECK(values(tapeflow::argmax(x, 0)) == std::vector<double>{1, 1, 0});
    CHECK(values(tapeflow::argmax(Tensor{-inf, -inf}, 0)) == std::vector<double>{0});
}

TEST_CASE("max and min propagate NaN rather than skip it") {
    CHECK(std::isnan(tapeflow::max(Tensor{1, quiet_nan, 3}).item()));
    CHECK(std::isnan(tapeflow::min(Tensor{quiet_nan, 1, 3}).item()));
    const Tensor m = tapeflow::max(Tensor{{1, quiet_nan}, {2, 3}}, 1);
    CHECK(std::isnan(m[0]));
    CHECK(m[1] == 3);
    CHECK(std::isnan(tapeflow::min(Tensor{{1, 2}, {3, quiet_nan}}, 0)[1]));
}

TEST_CASE("logsumexp handles infinities and large values without overflow") {
    CHECK(tapeflow::logsumexp(Tensor{-inf, -inf, -inf}).item() == -inf);
    CHECK(tapeflow::logsumexp(Tensor{1, inf, -inf}).item() == inf);
    CHECK(tapeflow::logsumexp(Tensor{inf, inf}).item() == inf);
    CHECK(tapeflow::logsumexp(Tensor{-inf, 5}).item() == 5);
    CHECK(std::abs(tapeflow::logsumexp(Tensor{1000, 1000}).item() - (1000 + ln2)) <= 2.3e-13);
    CHECK(std::abs(tapeflow::logsumexp(Tensor{-1000, -1000}).item() - (-1000 + ln2)) <= 2.3e-13);
    CHECK(tapeflow::logsumexp(Tensor{1000, 0}).item() == 1000);  // e^−1000 vanishes next to 1
    CHECK(std::isnan(tapeflow::logsumexp(Tensor{quiet_nan, 0}).item()));

    // The same cases, one per row, reduced along the axis: each row gets its own shift.
    const Tensor rows{{-inf, -inf}, {1000, 1000}, {inf, 0}, {-1000, -1000}, {inf, inf}, {-inf, 5}, {inf, -inf}};
    const Tensor r = tapeflow::logsumexp(rows, 1);
    REQUIRE(r.shape() == Shape{7});
    CHECK(r[0] == -inf);
    CHECK(std::abs(r[1] - (1000 + ln2)) <= 2.3e-13);
    CHECK(r[2] == inf);
    CHECK(std::abs(r[3] - (-1000 + ln2)) <= 2.3e-13);
    CHECK(r[4] == inf);
    CHECK(r[5] == 5);
    CHECK(r[6] == inf);
    const Tensor cols = tapeflow::logsumexp(tapeflow::transpose(rows), 0, true);
    CHECK(cols.shape() == Shape{1, 7});
    CHECK(tapeflow::equal(cols.reshape(Shape{7}), r));
    CHECK(std::isnan(tapeflow::logsumexp(Tensor{{quiet_nan, 0}, {1, 2}}, 1)[0]));
}

TEST_CASE("sum is 0 over nothing; mean, max, min, argmax and logsumexp of nothing are errors") {
    CHECK(tapeflow::sum(Tensor::zeros(Shape{0})).item() == 0);
    CHECK(values(tapeflow::sum(Tensor::zeros(Shape{2, 0}), 1)) == std::vector<double>{0, 0});
    CHECK(tapeflow::sum(Tensor::zeros(Shape{2, 0}), 0).shape() == Shape{0});
    CHECK(tapeflow::max(Tensor::zeros(Shape{0, 3}), 1).shape() == Shape{0});  // nothing to reduce, no error

    const Tensor empty = Tensor::zeros(Shape{0});
    CHECK_THROWS_WITH_AS(tapeflow::mean(empty), "mean: the tensor [0] is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::max(empty), "max: the tensor [0] is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::min(empty), "min: the tensor [0] is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::logsumexp(empty), "logsumexp: the tensor [0] is empty", std::invalid_argument);

    const Tensor no_columns = Tensor::zeros(Shape{2, 0});
    for (const auto& [name, op] : std::vector<std::pair<std::string, Tensor (*)(const Tensor&, int, bool)>>{
             {"mean", tapeflow::mean},
             {"max", tapeflow::max},
             {"min", tapeflow::min},
             {"argmax", tapeflow::argmax},
             {"logsumexp", tapeflow::logsumexp}}) {
        CAPTURE(name);
        CHECK_THROWS_WITH_AS(op(no_columns, 1, false), (name + ": axis 1 of shape [2, 0] is empty").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(op(no_columns, -1, true), (name + ": axis -1 of shape [2, 0] is empty").c_str(),
                             std::invalid_argument);
    }
}

TEST_CASE("reductions name themselves for a bad axis or an undefined tensor") {
    const Tensor x = Tensor::zeros(Shape{2, 3});
    for (const auto& [name, op] : std::vector<std::pair<std::string, Tensor (*)(const Tensor&, int, bool)>>{
             {"sum", tapeflow::sum},
             {"mean", tapeflow::mean},
             {"max", tapeflow::max},
             {"min", tapeflow::min},
             {"argmax", tapeflow::argmax},
             {"logsumexp", tapeflow::logsumexp}}) {
        CAPTURE(name);
        CHECK_THROWS_WITH_AS(op(x, 2, false), (name + ": axis 2 is out of range for a tensor of rank 2").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(op(x, -3, true), (name + ": axis -3 is out of range for a tensor of rank 2").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(op(Tensor::scalar(1), 0, false),
                             (name + ": axis 0 is out of range for a tensor of rank 0").c_str(), std::invalid_argument);
        CHECK_THROWS_WITH_AS(op(Tensor{}, 0, false), (name + ": the tensor is undefined (empty handle)").c_str(),
                             std::invalid_argument);
    }
    for (const auto& [name, op] : std::vector<std::pair<std::string, Tensor (*)(const Tensor&)>>{
             {"sum", tapeflow::sum},
             {"mean", tapeflow::mean},
             {"max", tapeflow::max},
             {"min", tapeflow::min},
             {"logsumexp", tapeflow::logsumexp}}) {
        CAPTURE(name);
        CHECK_THROWS_WITH_AS(op(Tensor{}), (name + ": the tensor is undefined (empty handle)").c_str(),
                             std::invalid_argument);
    }
}

TEST_CASE("sum_to reverses broadcasting over leading, size-1 and all axes") {
    const Tensor x{{1, 2, 3}, {4, 5, 6}};
    CHECK(tapeflow::sum_to(x, Shape{2, 3}).shares_storage_with(x));  // nothing to sum: no copy
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{3}), Tensor{5, 7, 9}));
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{1, 3}), Tensor{{5, 7, 9}}));
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{2, 1}), Tensor(Shape{2, 1}, {6, 15})));
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{}), Tensor::scalar(21)));
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{1}), Tensor{21}));
    CHECK(tapeflow::equal(tapeflow::sum_to(x, Shape{1, 1}), Tensor(Shape{1, 1}, {21})));

    // A leading axis plus a size-1 axis, checked against reductions composed by hand.
    const Tensor y = Tensor::arange(0, 24).reshape(Shape{4, 2, 3});
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{2, 3}), tapeflow::sum(y, 0)));
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{3}), tapeflow::sum(tapeflow::sum(y, 0), 0)));
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{2, 1}), tapeflow::sum(tapeflow::sum(y, 0), 1, true)));
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{1, 2, 1}), tapeflow::sum(tapeflow::sum(y, 0, true), 2, true)));
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{4, 1, 1}), tapeflow::sum(tapeflow::sum(y, 1, true), 2, true)));
    CHECK(tapeflow::equal(tapeflow::sum_to(y, Shape{4, 1, 3}), tapeflow::sum(y, 1, true)));
    CHECK(tapeflow::sum_to(Tensor::zeros(Shape{0, 3}), Shape{3}).shape() == Shape{3});
    CHECK(values(tapeflow::sum_to(Tensor::ones(Shape{0, 3}), Shape{3})) == std::vector<double>{0, 0, 0});
}

TEST_CASE("sum_to is the adjoint of broadcast_to: <broadcast_to(x), y> = <x, sum_to(y)>") {
    tapeflow::Rng rng(7);
    const Shape big{3, 4, 5};
    for (const Shape& small : {Shape{}, Shape{5}, Shape{4, 1}, Shape{3, 1, 5}, Shape{1, 4, 5}, Shape{3, 4, 5}}) {
        CAPTURE(small);
        const Tensor x = tapeflow::randn(small, rng);
        const Tensor y = tapeflow::randn(big, rng);
        const double lhs = tapeflow::sum(tapeflow::broadcast_to(x, big) * y).item();
        const double rhs = tapeflow::sum(x * tapeflow::sum_to(y, small)).item();
        CHECK(std::abs(lhs - rhs) <= 1e-12);
    }
}

TEST_CASE("sum_to refuses a target that does not broadcast to the input") {
    const Tensor x = Tensor::zeros(Shape{2, 3});
    CHECK_THROWS_WITH_AS(tapeflow::sum_to(x, Shape{4}), "sum_to: shapes [4] and [2, 3] cannot be broadcast together",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::sum_to(x, Shape{1, 2, 3}),
                         "sum_to: shape [1, 2, 3] does not broadcast to [2, 3], so [2, 3] cannot be summed back to it",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::sum_to(Tensor::zeros(Shape{2, 1}), Shape{2, 3}),
                         "sum_to: shape [2, 3] does not broadcast to [2, 1], so [2, 1] cannot be summed back to it",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::sum_to(Tensor{}, Shape{}), "sum_to: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("cumsum runs along the axis; norm is √Σa² without overflow or underflow") {
    const Tensor m{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}};
    CHECK(equal(cumsum(m, -1), Tensor{{1.0, 3.0, 6.0}, {4.0, 9.0, 15.0}}));
    CHECK(equal(cumsum(m, 0), Tensor{{1.0, 2.0, 3.0}, {5.0, 7.0, 9.0}}));
    CHECK_THROWS_WITH_AS(cumsum(m, 2), doctest::Contains("cumsum"), std::invalid_argument);
    CHECK(equal(norm(Tensor{{3.0, 4.0}, {0.0, 0.0}}, 1), Tensor{5.0, 0.0}));
    CHECK(equal(norm(Tensor{{3.0, 4.0}}, 0, true), Tensor{{3.0, 4.0}}));
    CHECK(norm(Tensor{3e300, 4e300}, 0).item() == doctest::Approx(5e300).epsilon(1e-15));
    CHECK(norm(Tensor{3e-300, 4e-300}, 0).item() == doctest::Approx(5e-300).epsilon(1e-15));
    CHECK(std::isinf(norm(Tensor{1.0, INFINITY}, 0).item()));
    CHECK_THROWS_WITH_AS(norm(m, -3), doctest::Contains("axis"), std::invalid_argument);
}

// The fused kernels against the formulas composed from separate passes (softmax = e^{a − lse}).
TEST_CASE("softmax and log_softmax kernels: every axis against exp(a − logsumexp), and their backward formulas") {
    tapeflow::Rng rng(21);
    const Tensor a = tapeflow::randn(Shape{3, 4, 5}, rng) * 3.0;
    const Tensor g = tapeflow::randn(Shape{3, 4, 5}, rng);
    for (int axis : {0, 1, 2, -1}) {
        CAPTURE(axis);
        const Tensor lse = logsumexp(a, axis, true);
        const Tensor s = tapeflow::softmax(a, axis);
        const Tensor y = tapeflow::log_softmax(a, axis);
        CHECK(max_abs_diff(s, exp(a - lse)) <= 1e-15);
        CHECK(max_abs_diff(y, a - lse) <= 1e-14);
        // s ⊙ (g − Σ g s) and g − e^y Σ g, composed.
        const Tensor ds = s * (g - sum(g * s, axis, true));
        const Tensor dy = g - exp(y) * sum(g, axis, true);
        CHECK(max_abs_diff(tapeflow::softmax_backward(s, g, axis), ds) <= 1e-15);
        CHECK(max_abs_diff(tapeflow::log_softmax_backward(y, g, axis), dy) <= 1e-15);
    }
    // By hand: softmax(0, log 3) = (1/4, 3/4); its VJP with g = (1, 0) is s ⊙ (g − 1/4) = (3/16, −3/16).
    const Tensor q = tapeflow::softmax(Tensor{0.0, std::log(3.0)}, 0);
    CHECK(q[0] == doctest::Approx(0.25).epsilon(1e-15));
    CHECK(q[1] == doctest::Approx(0.75).epsilon(1e-15));
    const Tensor dq = tapeflow::softmax_backward(q, Tensor{1.0, 0.0}, 0);
    CHECK(dq[0] == doctest::Approx(3.0 / 16).epsilon(1e-15));
    CHECK(dq[1] == doctest::Approx(-3.0 / 16).epsilon(1e-15));
}

TEST_CASE("softmax and log_softmax kernels: no overflow, the ±inf rows, bad input") {
    const Tensor big = tapeflow::softmax(Tensor{{1000.0, 1000.0 + std::log(3.0)}}, 1);
    CHECK(big[0] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(big[1] == doctest::Approx(0.75).epsilon(1e-12));
    CHECK(tapeflow::log_softmax(Tensor{0.0, -2000.0}, 0)[1] == doctest::Approx(-2000.0).epsilon(1e-15));
    // An −inf entry gets no mass; an all −inf row has none to share (NaN); a +inf entry takes it all
    // as inf/inf (NaN) and leaves 0 to the rest — each as the composed exp(a − logsumexp(a)).
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor rows{{0.0, -inf}, {-inf, -inf}, {inf, 1.0}};
    const Tensor s = tapeflow::softmax(rows, 1);
    CHECK(s[0] == 1.0);
    CHECK(s[1] == 0.0);
    CHECK(std::isnan(s[2]));
    CHECK(std::isnan(s[3]));
    CHECK(std::isnan(s[4]));
    CHECK(s[5] == 0.0);
    const Tensor y = tapeflow::log_softmax(rows, 1);
    CHECK(y[0] == 0.0);
    CHECK(y[1] == -inf);
    CHECK(std::isnan(y[2]));
    CHECK_THROWS_WITH_AS(tapeflow::softmax(Tensor{1.0, 2.0}, 1), doctest::Contains("axis"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::softmax_backward(Tensor{0.5, 0.5}, Tensor{1.0, 2.0, 3.0}, 0),
                         "softmax_backward: the gradient's shape [3] differs from the output's shape [2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::log_softmax(Tensor{}, 0), doctest::Contains("undefined"), std::invalid_argument);
}
