#include "tensor/elementwise.hpp"
#include "tests/helpers.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

using tapeflow::Shape;
using tapeflow::Tensor;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double quiet_nan = std::numeric_limits<double>::quiet_NaN();
const double ln2 = std::numbers::ln2;
const double ln3 = std::log(3.0);

using tapeflow::testing::values;

// |actual − expected| ≤ tol elementwise, shapes equal; NaN never passes.
bool near(const Tensor& actual, const std::vector<double>& expected, double tol) {
    if (actual.numel() != expected.size()) return false;
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (!(std::abs(actual[i] - expected[i]) <= tol)) return false;
    return true;
}

// Distinct, positive values so that any misplaced element changes the result (and pow stays real).
Tensor distinct(const Shape& shape, double start, double step) {
    Tensor t(shape);
    for (std::size_t i = 0; i < t.numel(); ++i) t[i] = start + step * static_cast<double>(i);
    return t;
}

// Broadcasting written independently of detail::for_each_broadcast: unravel the output index, then
// read each operand at the same index with its size-1 axes pinned to 0 and missing leading axes dropped.
std::size_t operand_offset(const Shape& out, std::size_t flat, const Shape& in) {
    std::array<std::size_t, Shape::max_rank> index{};
    for (std::size_t i = out.rank(); i-- > 0;) {
        index[i] = flat % out[i];
        flat /= out[i];
    }
    const std::size_t lead = out.rank() - in.rank();
    std::size_t offset = 0;
    for (std::size_t i = 0; i < in.rank(); ++i) offset = offset * in[i] + (in[i] == 1 ? 0 : index[lead + i]);
    return offset;
}

using Binary = Tensor (*)(const Tensor&, const Tensor&);
using Scalar2 = double (*)(double, double);

struct BinaryCase {
    const char* name;
    Binary op;
    Scalar2 f;
};

const std::vector<BinaryCase>& binary_cases() {
    static const std::vector<BinaryCase> cases{
        {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double x, double y) { return x + y; }},
        {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double x, double y) { return x - y; }},
        {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double x, double y) { return x * y; }},
        {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double x, double y) { return x / y; }},
        {"minimum", tapeflow::minimum, [](double x, double y) { return std::fmin(x, y); }},
        {"maximum", tapeflow::maximum, [](double x, double y) { return std::fmax(x, y); }},
        {"pow", [](const Tensor& a, const Tensor& b) { return tapeflow::pow(a, b); },
         [](double x, double y) { return std::pow(x, y); }},
        {"lt", tapeflow::lt, [](double x, double y) { return x < y ? 1.0 : 0.0; }},
        {"le", tapeflow::le, [](double x, double y) { return x <= y ? 1.0 : 0.0; }},
        {"gt", tapeflow::gt, [](double x, double y) { return x > y ? 1.0 : 0.0; }},
        {"ge", tapeflow::ge, [](double x, double y) { return x >= y ? 1.0 : 0.0; }},
        {"eq", tapeflow::eq, [](double x, double y) { return x == y ? 1.0 : 0.0; }},
        {"ne", tapeflow::ne, [](double x, double y) { return x != y ? 1.0 : 0.0; }},
    };
    return cases;
}

// Checks op(a, b) against the reference broadcast of f, and that the shape is `expected`.
void check_broadcast(const BinaryCase& c, const Shape& sa, const Shape& sb, const Shape& expected) {
    CAPTURE(c.name);
    CAPTURE(sa);
    CAPTURE(sb);
    const Tensor a = distinct(sa, 1.0, 0.5);
    // Overlapping ranges so that comparisons see <, = and >.
    const Tensor b = distinct(sb, 1.5, 0.75);
    const Tensor out = c.op(a, b);
    REQUIRE(out.shape() == expected);
    for (std::size_t i = 0; i < out.numel(); ++i) {
        const double want = c.f(a[operand_offset(expected, i, sa)], b[operand_offset(expected, i, sb)]);
        if (out[i] != want) {
            CAPTURE(i);
            CHECK(out[i] == want);
            return;
        }
    }
}

}  // namespace

TEST_CASE("binary ops on equal shapes match hand-computed values") {
    const Tensor a{{1, -2, 3}, {0.5, 4, -6}};
    const Tensor b{{2, 4, -1}, {0.25, 4, 3}};
    CHECK(values(tapeflow::add(a, b)) == std::vector<double>{3, 2, 2, 0.75, 8, -3});
    CHECK(values(tapeflow::sub(a, b)) == std::vector<double>{-1, -6, 4, 0.25, 0, -9});
    CHECK(values(tapeflow::mul(a, b)) == std::vector<double>{2, -8, -3, 0.125, 16, -18});
    CHECK(values(tapeflow::div(a, b)) == std::vector<double>{0.5, -0.5, -3, 2, 1, -2});
    CHECK(values(tapeflow::minimum(a, b)) == std::vector<double>{1, -2, -1, 0.25, 4, -6});
    CHECK(values(tapeflow::maximum(a, b)) == std::vector<double>{2, 4, 3, 0.5, 4, 3});
    CHECK(near(tapeflow::pow(a, b), {1, 16, 1.0 / 3.0, 0.8408964152537145, 256, -216}, 1e-15));
    CHECK(values(a + b) == values(tapeflow::add(a, b)));
    CHECK(values(a - b) == values(tapeflow::sub(a, b)));
    CHECK(values(a * b) == values(tapeflow::mul(a, b)));
    CHECK(values(a / b) == values(tapeflow::div(a, b)));
    CHECK((a + b).shape() == Shape{2, 3});
    // std::pow semantics: a negative base with a non-integer exponent is NaN; 0⁰ = 1.
    CHECK(std::isnan(tapeflow::pow(Tensor{-8}, Tensor{1.0 / 3.0})[0]));
    CHECK(tapeflow::pow(Tensor{0}, Tensor{0})[0] == 1);
    CHECK(tapeflow::div(Tensor{1, -1}, Tensor{0, 0})[0] == inf);
    CHECK(tapeflow::div(Tensor{1, -1}, Tensor{0, 0})[1] == -inf);
}

TEST_CASE("scalar operators apply on either side in the right order") {
    const Tensor a{1, -2, 4, 0.5};
    CHECK(values(a + 1.0) == std::vector<double>{2, -1, 5, 1.5});
    CHECK(values(1.0 + a) == std::vector<double>{2, -1, 5, 1.5});
    CHECK(values(a - 1.0) == std::vector<double>{0, -3, 3, -0.5});
    CHECK(values(1.0 - a) == std::vector<double>{0, 3, -3, 0.5});
    CHECK(values(a * 2.0) == std::vector<double>{2, -4, 8, 1});
    CHECK(values(2.0 * a) == std::vector<double>{2, -4, 8, 1});
    CHECK(values(a / 2.0) == std::vector<double>{0.5, -1, 2, 0.25});
    CHECK(values(2.0 / a) == std::vector<double>{2, -1, 0.5, 4});
    CHECK(values(-a) == std::vector<double>{-1, 2, -4, -0.5});
    CHECK(values(tapeflow::neg(a)) == std::vector<double>{-1, 2, -4, -0.5});
    CHECK((Tensor::scalar(3) * 2.0).shape() == Shape{});
    CHECK((Tensor::scalar(3) * 2.0).item() == 6);
    CHECK(values(a) == std::vector<double>{1, -2, 4, 0.5});  // inputs untouched
}

TEST_CASE("unary ops match hand-computed values") {
    const double e = std::numbers::e;
    CHECK(near(tapeflow::exp(Tensor{0, 1, -inf, ln2}), {1, e, 0, 2}, 4.5e-16));
    CHECK(tapeflow::exp(Tensor{0})[0] == 1);
    const Tensor logs = tapeflow::log(Tensor{1, e, 0, 8});
    CHECK(logs[0] == 0);
    CHECK(std::abs(logs[1] - 1) <= 2.3e-16);
    CHECK(logs[2] == -inf);
    CHECK(std::abs(logs[3] - 3 * ln2) <= 4.5e-16);
    CHECK(std::isnan(tapeflow::log(Tensor{-1})[0]));
    // log1p / expm1 keep the tiny argument that log(1 + x) / exp(x) − 1 would round away.
    CHECK(values(tapeflow::log1p(Tensor{0, 1e-20, -1})) == std::vector<double>{0, 1e-20, -inf});
    CHECK(std::abs(tapeflow::log1p(Tensor{1})[0] - ln2) <= 1.2e-16);
    CHECK(values(tapeflow::expm1(Tensor{0, 1e-20, -inf})) == std::vector<double>{0, 1e-20, -1});
    CHECK(std::abs(tapeflow::expm1(Tensor{ln2})[0] - 1) <= 2.3e-16);
    CHECK(values(tapeflow::sqrt(Tensor{4, 2, 0, 0.25})) == std::vector<double>{2, std::numbers::sqrt2, 0, 0.5});
    CHECK(std::isnan(tapeflow::sqrt(Tensor{-1})[0]));
    CHECK(values(tapeflow::square(Tensor{-3, 0.5, 0})) == std::vector<double>{9, 0.25, 0});
    CHECK(values(tapeflow::pow(Tensor{2, 9, -3}, 3.0)) == std::vector<double>{8, 729, -27});
    CHECK(values(tapeflow::pow(Tensor{4, 9, 0}, 0.5)) == std::vector<double>{2, 3, 0});
    CHECK(values(tapeflow::pow(Tensor{4, 0.5}, -1.0)) == std::vector<double>{0.25, 2});
    CHECK(std::isnan(tapeflow::pow(Tensor{-8}, 1.0 / 3.0)[0]));
    CHECK(values(tapeflow::abs(Tensor{-2, 0, 3, -inf})) == std::vector<double>{2, 0, 3, inf});
    const double pi = std::numbers::pi;
    CHECK(near(tapeflow::sin(Tensor{0, pi / 6, pi / 2, -pi / 2}), {0, 0.5, 1, -1}, 1.2e-16));
    CHECK(near(tapeflow::cos(Tensor{0, pi / 3, pi}), {1, 0.5, -1}, 2.3e-16));
    // tanh(ln 2) = (4 − 1)/(4 + 1).
    CHECK(near(tapeflow::tanh(Tensor{0, ln2, -ln2, 1000, -1000}), {0, 0.6, -0.6, 1, -1}, 2.3e-16));
    CHECK(values(tapeflow::relu(Tensor{-1, 0, 2, -inf})) == std::vector<double>{0, 0, 2, 0});
    CHECK(values(tapeflow::leaky_relu(Tensor{-1, 0, 2})) == std::vector<double>{-0.01, 0, 2});
    CHECK(values(tapeflow::leaky_relu(Tensor{-5, 3}, 0.2)) == std::vector<double>{-1, 3});
}

TEST_CASE("sigmoid, softplus and log_sigmoid match closed forms") {
    // σ(ln 3) = 3/4, softplus(ln 3) = ln 4, log σ(ln 3) = ln 3/4.
    CHECK(near(tapeflow::sigmoid(Tensor{0, ln3, -ln3}), {0.5, 0.75, 0.25}, 1.2e-16));
    CHECK(near(tapeflow::softplus(Tensor{0, ln3, -ln3}), {ln2, 2 * ln2, std::log(4.0 / 3.0)}, 2.3e-16));
    CHECK(near(tapeflow::log_sigmoid(Tensor{0, ln3, -ln3}), {-ln2, std::log(0.75), -2 * ln2}, 2.3e-16));
}

TEST_CASE("stable primitives stay exact at extreme inputs") {
    const Tensor sp = tapeflow::softplus(Tensor{1000, -1000, 40, -40, inf, -inf});
    CHECK(sp[0] == 1000);
    // softplus(−1000) = log1p(e^−1000) ≈ e^−1000, below the smallest double: 0, never inf or NaN.
    CHECK(sp[1] >= 0);
    CHECK(sp[1] < 1e-300);
    CHECK(sp[2] == 40);  // 40 + 4e-18 rounds to 40
    CHECK(std::abs(sp[3] - std::exp(-40.0)) <= 1e-15 * std::exp(-40.0));
    CHECK(sp[4] == inf);
    CHECK(sp[5] == 0);

    const Tensor ls = tapeflow::log_sigmoid(Tensor{-1000, 1000, -40, 40});
    CHECK(ls[0] == -1000);
    CHECK(ls[1] == 0);
    CHECK(ls[2] == -40);
    CHECK(std::abs(ls[3] + std::exp(-40.0)) <= 1e-15 * std::exp(-40.0));

    const Tensor s = tapeflow::sigmoid(Tensor{1000, -1000, -40, -745, inf, -inf});
    CHECK(s[0] == 1);
    CHECK(s[1] == 0);
    CHECK(std::abs(s[2] - std::exp(-40.0)) <= 1e-15 * std::exp(-40.0));
    CHECK(s[3] > 0);  // e^−745 is the smallest subnormal, not flushed by 1 − …
    CHECK(s[4] == 1);
    CHECK(s[5] == 0);
    CHECK(tapeflow::all_finite(tapeflow::softplus(tapeflow::Tensor::linspace(-1e4, 1e4, 201))));
    CHECK(tapeflow::all_finite(tapeflow::log_sigmoid(tapeflow::Tensor::linspace(-1e4, 1e4, 201))));
}

TEST_CASE("clamp bounds every element and checks its bounds") {
    CHECK(values(tapeflow::clamp(Tensor{-2, 0.5, 3, -inf, inf}, 0, 1)) == std::vector<double>{0, 0.5, 1, 0, 1});
    CHECK(values(tapeflow::clamp(Tensor{-2, 3}, 1, 1)) == std::vector<double>{1, 1});
    CHECK_THROWS_WITH_AS(tapeflow::clamp(Tensor{1}, 2, 1), "clamp: lower bound 2 exceeds upper bound 1",
                         std::invalid_argument);
    CHECK_THROWS_AS(tapeflow::clamp(Tensor{1}, quiet_nan, 1), std::invalid_argument);
}

TEST_CASE("comparisons give 1 or 0, and NaN compares unequal to everything") {
    const Tensor a{1, 2, 3, quiet_nan};
    const Tensor b{2, 2, 2, quiet_nan};
    CHECK(values(tapeflow::lt(a, b)) == std::vector<double>{1, 0, 0, 0});
    CHECK(values(tapeflow::le(a, b)) == std::vector<double>{1, 1, 0, 0});
    CHECK(values(tapeflow::gt(a, b)) == std::vector<double>{0, 0, 1, 0});
    CHECK(values(tapeflow::ge(a, b)) == std::vector<double>{0, 1, 1, 0});
    CHECK(values(tapeflow::eq(a, b)) == std::vector<double>{0, 1, 0, 0});
    CHECK(values(tapeflow::ne(a, b)) == std::vector<double>{1, 0, 1, 1});
    // Column against row: the strict lower triangle of a 3×3 grid.
    const Tensor col = Tensor(Shape{3, 1}, {0, 1, 2});
    const Tensor row = Tensor{0, 1, 2};
    CHECK(values(tapeflow::lt(row, col)) == std::vector<double>{0, 0, 0, 1, 0, 0, 1, 1, 0});
    CHECK(tapeflow::eq(Tensor{0.0}, Tensor{-0.0})[0] == 1);
}

TEST_CASE("where picks a where cond is non-zero, b elsewhere, broadcasting all three") {
    const Tensor cond(Shape{2, 1}, {1, 0});
    const Tensor out = tapeflow::where(cond, Tensor{1, 2, 3}, Tensor::scalar(9));
    CHECK(out.shape() == Shape{2, 3});
    CHECK(values(out) == std::vector<double>{1, 2, 3, 9, 9, 9});
    // Any non-zero value (negative, fractional, NaN) selects a; −0 is zero.
    const Tensor picks = tapeflow::where(Tensor{-2, 0, 0.5, -0.0, quiet_nan}, Tensor::scalar(1), Tensor::scalar(0));
    CHECK(values(picks) == std::vector<double>{1, 0, 1, 0, 1});
    // The result shape comes from all three operands, not just from cond.
    const Tensor wide = tapeflow::where(Tensor::scalar(0), Tensor::zeros(Shape{2, 1}), Tensor{5, 6, 7});
    CHECK(wide.shape() == Shape{2, 3});
    CHECK(values(wide) == std::vector<double>{5, 6, 7, 5, 6, 7});
    const Tensor s = tapeflow::where(Tensor::scalar(1), Tensor::scalar(2), Tensor::scalar(3));
    CHECK(s.shape() == Shape{});
    CHECK(s.item() == 2);
    CHECK_THROWS_WITH_AS(tapeflow::where(Tensor{1, 0}, Tensor{1, 2, 3}, Tensor::scalar(0)),
                         "where: shapes [2] and [3] cannot be broadcast together", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::where(Tensor{1, 0}, Tensor{1, 2}, Tensor{1, 2, 3}),
                         "where: shapes [2] and [3] cannot be broadcast together", std::invalid_argument);
}

TEST_CASE("every binary op broadcasts in either argument, through size-1 axes and 0-d tensors") {
    struct Pair {
        Shape a, b, out;
    };
    const std::vector<Pair> pairs{
        {{2, 3}, {2, 3}, {2, 3}}, {{2, 3}, {3}, {2, 3}},       {{3}, {2, 3}, {2, 3}},
        {{2, 1}, {1, 3}, {2, 3}}, {{1, 3}, {2, 1}, {2, 3}},    {{2, 3}, {}, {2, 3}},
        {{}, {2, 3}, {2, 3}},     {{}, {}, {}},                {{1}, {3}, {3}},
        {{3}, {1}, {3}},          {{2, 1, 3}, {4, 1}, {2, 4, 3}}, {{0, 3}, {3}, {0, 3}},
        {{1}, {}, {1}},
    };
    for (const BinaryCase& c : binary_cases())
        for (const Pair& p : pairs) check_broadcast(c, p.a, p.b, p.out);
}

TEST_CASE("the broadcast loop carries across several axes, stride-0 axes and rank 8") {
    // Operand strides are 0 on alternating axes, so a wrong carry in the odometer misplaces elements.
    const BinaryCase& add = binary_cases()[0];
    const BinaryCase& sub = binary_cases()[1];
    check_broadcast(add, Shape{2, 1, 4, 1}, Shape{3, 1, 5}, Shape{2, 3, 4, 5});
    check_broadcast(sub, Shape{3, 1, 5}, Shape{2, 1, 4, 1}, Shape{2, 3, 4, 5});
    check_broadcast(sub, Shape{3, 1}, Shape{2, 1, 1}, Shape{2, 3, 1});  // innermost axis of length 1
    check_broadcast(sub, Shape{2, 1, 2, 1, 2, 1, 2, 1}, Shape{2, 1, 2, 1, 2, 1, 2},
                    Shape{2, 2, 2, 2, 2, 2, 2, 2});
    check_broadcast(add, Shape{1, 1, 1}, Shape{2, 1, 0}, Shape{2, 1, 0});

    // Three operands, each broadcast along different axes.
    const Tensor c = distinct(Shape{2, 1, 1}, 0, 1);  // 0, 1: the second block takes b
    const Tensor a = distinct(Shape{1, 3, 1}, 10, 1);
    const Tensor b = distinct(Shape{4}, 100, 1);
    const Tensor w = tapeflow::where(c, a, b);
    REQUIRE(w.shape() == Shape{2, 3, 4});
    CHECK(values(w) == std::vector<double>{100, 101, 102, 103, 100, 101, 102, 103, 100, 101, 102, 103,
                                           10,  10,  10,  10,  11,  11,  11,  11,  12,  12,  12,  12});
    const Tensor w2 = tapeflow::where(tapeflow::gt(b, Tensor::scalar(101.5)), a, c);
    CHECK(w2.shape() == Shape{2, 3, 4});
    CHECK(values(w2) == std::vector<double>{0, 0, 10, 10, 0, 0, 11, 11, 0, 0, 12, 12,
                                            1, 1, 10, 10, 1, 1, 11, 11, 1, 1, 12, 12});
}

TEST_CASE("shape mismatches name the op and both shapes") {
    const Tensor a = Tensor::zeros(Shape{2, 3});
    const Tensor b = Tensor::zeros(Shape{2});
    for (const BinaryCase& c : binary_cases()) {
        CAPTURE(c.name);
        const std::string name = c.name;
        CHECK_THROWS_WITH_AS(c.op(a, b), (name + ": shapes [2, 3] and [2] cannot be broadcast together").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(c.op(b, a), (name + ": shapes [2] and [2, 3] cannot be broadcast together").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(c.op(Tensor{}, a), (name + ": the tensor is undefined (empty handle)").c_str(),
                             std::invalid_argument);
        CHECK_THROWS_WITH_AS(c.op(a, Tensor{}), (name + ": the tensor is undefined (empty handle)").c_str(),
                             std::invalid_argument);
    }
}

TEST_CASE("unary ops keep the shape, including 0-d and empty, and reject undefined tensors") {
    using Unary = Tensor (*)(const Tensor&);
    const std::vector<std::pair<const char*, Unary>> ops{
        {"neg", tapeflow::neg},
        {"exp", [](const Tensor& t) { return tapeflow::exp(t); }},
        {"log", [](const Tensor& t) { return tapeflow::log(t); }},
        {"log1p", [](const Tensor& t) { return tapeflow::log1p(t); }},
        {"expm1", [](const Tensor& t) { return tapeflow::expm1(t); }},
        {"sqrt", [](const Tensor& t) { return tapeflow::sqrt(t); }},
        {"square", tapeflow::square},
        {"pow", [](const Tensor& t) { return tapeflow::pow(t, 2.0); }},
        {"abs", [](const Tensor& t) { return tapeflow::abs(t); }},
        {"sin", [](const Tensor& t) { return tapeflow::sin(t); }},
        {"cos", [](const Tensor& t) { return tapeflow::cos(t); }},
        {"tanh", [](const Tensor& t) { return tapeflow::tanh(t); }},
        {"sigmoid", tapeflow::sigmoid},
        {"relu", tapeflow::relu},
        {"leaky_relu", [](const Tensor& t) { return tapeflow::leaky_relu(t); }},
        {"softplus", tapeflow::softplus},
        {"log_sigmoid", tapeflow::log_sigmoid},
        {"clamp", [](const Tensor& t) { return tapeflow::clamp(t, -1, 1); }},
        {"add", [](const Tensor& t) { return t + 1.0; }},
        {"sub", [](const Tensor& t) { return 1.0 - t; }},
        {"mul", [](const Tensor& t) { return 2.0 * t; }},
        {"div", [](const Tensor& t) { return 2.0 / t; }},
    };
    for (const auto& [name, op] : ops) {
        CAPTURE(name);
        CHECK(op(Tensor::scalar(0.5)).shape() == Shape{});
        CHECK(op(Tensor::zeros(Shape{0, 2})).shape() == Shape{0, 2});
        CHECK(op(Tensor::zeros(Shape{2, 1, 3})).shape() == Shape{2, 1, 3});
        CHECK_THROWS_WITH_AS(op(Tensor{}), (std::string(name) + ": the tensor is undefined (empty handle)").c_str(),
                             std::invalid_argument);
    }
}

TEST_CASE("add_into scales and broadcasts the source into the destination") {
    Tensor dst = Tensor::ones(Shape{2, 3});
    tapeflow::add_into(dst, Tensor{1, 2, 3}, 0.5);
    CHECK(values(dst) == std::vector<double>{1.5, 2, 2.5, 1.5, 2, 2.5});
    tapeflow::add_into(dst, Tensor(Shape{2, 1}, {1, 2}), -1);
    CHECK(values(dst) == std::vector<double>{0.5, 1, 1.5, -0.5, 0, 0.5});
    tapeflow::add_into(dst, Tensor::ones(Shape{2, 3}));
    CHECK(values(dst) == std::vector<double>{1.5, 2, 2.5, 0.5, 1, 1.5});
    CHECK_THROWS_WITH_AS(tapeflow::add_into(dst, Tensor::ones(Shape{3, 2, 3})),
                         "add_into: source shape [3, 2, 3] does not broadcast to destination shape [2, 3]",
                         std::invalid_argument);
    Tensor undefined;
    CHECK_THROWS_WITH_AS(tapeflow::add_into(undefined, dst), "add_into: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("all_finite flags NaN and both infinities") {
    CHECK(tapeflow::all_finite(Tensor{0, -1e308, 1e308}));
    CHECK(tapeflow::all_finite(Tensor::zeros(Shape{0})));
    CHECK_FALSE(tapeflow::all_finite(Tensor{0, quiet_nan}));
    CHECK_FALSE(tapeflow::all_finite(Tensor{inf, 0}));
    CHECK_FALSE(tapeflow::all_finite(Tensor::scalar(-inf)));
    CHECK_THROWS_WITH_AS(tapeflow::all_finite(Tensor{}), "all_finite: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}
