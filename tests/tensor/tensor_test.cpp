#include "tensor/tensor.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

using tapeflow::Shape;
using tapeflow::Tensor;

namespace {
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double quiet_nan = std::numeric_limits<double>::quiet_NaN();

std::vector<double> values(const Tensor& t) { return t.to_vector(); }
}  // namespace

TEST_CASE("a default tensor is undefined and every access to it says so") {
    const Tensor t;
    CHECK_FALSE(t.defined());
    CHECK(t.numel() == 0);
    CHECK(t.use_count() == 0);
    CHECK_FALSE(t.clone().defined());
    CHECK_THROWS_WITH_AS(t.item(), "item: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(t.at({}), "at: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(t.reshape(Shape{}), "reshape: the tensor is undefined (empty handle)",
                         std::invalid_argument);
    Tensor u;
    CHECK_THROWS_WITH_AS(u.fill(1), "fill: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(u += Tensor{1}, "operator+=: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(u -= Tensor{1}, "operator-=: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(u *= 2.0, "operator*=: the tensor is undefined (empty handle)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::require_defined(t, "my_op"), "my_op: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("factories fill every element") {
    const Tensor z = Tensor::zeros(Shape{2, 3});
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.numel() == 6);
    CHECK(z.rank() == 2);
    CHECK(values(z) == std::vector<double>(6, 0.0));
    CHECK(values(Tensor::ones(Shape{4})) == std::vector<double>(4, 1.0));
    CHECK(values(Tensor::full(Shape{2, 2}, -2.5)) == std::vector<double>(4, -2.5));
    CHECK(values(Tensor::zeros_like(Tensor::ones(Shape{3, 1}))) == std::vector<double>(3, 0.0));
    CHECK(Tensor::ones_like(z).shape() == Shape{2, 3});
    CHECK(values(Tensor::ones_like(z)) == std::vector<double>(6, 1.0));

    // An empty tensor is still defined: an op on it yields another empty tensor, not an error.
    const Tensor e = Tensor::zeros(Shape{0, 3});
    CHECK(e.defined());
    CHECK(e.numel() == 0);
    CHECK(e.data() != nullptr);

    const Tensor v(Shape{2, 2}, {1, 2, 3, 4});
    CHECK(values(v) == std::vector<double>{1, 2, 3, 4});
    CHECK_THROWS_WITH_AS(Tensor(Shape{2, 2}, {1, 2, 3}), "Tensor: shape [2, 2] needs 4 values, got 3",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Tensor(Shape{}, {}), "Tensor: shape [] needs 1 values, got 0", std::invalid_argument);
}

TEST_CASE("arange follows numpy.arange: stop excluded, any non-zero step") {
    CHECK(values(Tensor::arange(0, 5)) == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(values(Tensor::arange(1, 2, 0.25)) == std::vector<double>{1, 1.25, 1.5, 1.75});
    CHECK(values(Tensor::arange(5, 0, -2)) == std::vector<double>{5, 3, 1});
    CHECK(values(Tensor::arange(0, 4.5)) == std::vector<double>{0, 1, 2, 3, 4});
    CHECK(Tensor::arange(0, 1, 0.1).numel() == 10);
    CHECK(Tensor::arange(0, 1, 0.1).shape() == Shape{10});
    CHECK(Tensor::arange(3, 3).numel() == 0);
    CHECK(Tensor::arange(3, 1).numel() == 0);  // wrong direction: empty, as numpy
    CHECK(Tensor::arange(1, 3, -1).numel() == 0);

    CHECK_THROWS_WITH_AS(Tensor::arange(0, 1, 0), "arange: needs finite start, stop and a non-zero step (got 0, 1, 0)",
                         std::invalid_argument);
    CHECK_THROWS_AS(Tensor::arange(0, inf), std::invalid_argument);
    CHECK_THROWS_AS(Tensor::arange(quiet_nan, 1), std::invalid_argument);
    CHECK_THROWS_AS(Tensor::arange(0, 1, quiet_nan), std::invalid_argument);
}

TEST_CASE("linspace includes both ends exactly") {
    CHECK(values(Tensor::linspace(0, 1, 5)) == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
    CHECK(values(Tensor::linspace(1, -1, 3)) == std::vector<double>{1, 0, -1});
    CHECK(values(Tensor::linspace(2, 7, 1)) == std::vector<double>{2});
    CHECK(Tensor::linspace(2, 7, 0).shape() == Shape{0});
    // 0.1·3 rounds to 0.30000000000000004; the end point must still be the requested 0.3.
    const Tensor t = Tensor::linspace(0, 0.3, 4);
    CHECK(t[0] == 0.0);
    CHECK(t[3] == 0.3);
    CHECK(std::abs(t[1] - 0.1) <= 1.4e-17);  // one ulp
    CHECK(std::abs(t[2] - 0.2) <= 2.8e-17);
}

TEST_CASE("nested braces give the shape and the row-major order") {
    const Tensor v{1, 2, 3};
    CHECK(v.shape() == Shape{3});
    CHECK(values(v) == std::vector<double>{1, 2, 3});

    const Tensor m{{1, 2, 3}, {4, 5, 6}};
    CHECK(m.shape() == Shape{2, 3});
    CHECK(values(m) == std::vector<double>{1, 2, 3, 4, 5, 6});

    const Tensor b{{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}};
    CHECK(b.shape() == Shape{2, 3, 2});
    CHECK(b.at({1, 2, 0}) == 11);
    CHECK(b.at({0, 1, 1}) == 4);

    const Tensor one_row{{1, 2}};
    CHECK(one_row.shape() == Shape{1, 2});
}

TEST_CASE("ragged nested braces are rejected, whichever row is off") {
    CHECK_THROWS_WITH_AS((Tensor{{1, 2, 3}, {4, 5}}), "Tensor: ragged nested list (a row of 2 after rows of 3)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((Tensor{{1, 2}, {3, 4}, {5, 6, 7}}),
                         "Tensor: ragged nested list (a row of 3 after rows of 2)", std::invalid_argument);
    CHECK_THROWS_WITH_AS((Tensor{{{1, 2}, {3, 4}}, {{5, 6}}}),
                         "Tensor: ragged nested list (blocks of different heights)", std::invalid_argument);
    CHECK_THROWS_WITH_AS((Tensor{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8, 9}}}),
                         "Tensor: ragged nested list (rows of different lengths)", std::invalid_argument);
    CHECK_THROWS_WITH_AS((Tensor{{{1, 2}, {3}}}), "Tensor: ragged nested list (rows of different lengths)",
                         std::invalid_argument);
}

TEST_CASE("a 0-d tensor holds one value with an empty shape") {
    Tensor s = Tensor::scalar(2.5);
    CHECK(s.rank() == 0);
    CHECK(s.shape() == Shape{});
    CHECK(s.numel() == 1);
    CHECK(s.item() == 2.5);
    CHECK(s.at({}) == 2.5);
    s.at({}) = -1;
    CHECK(s.item() == -1);
    CHECK(s.reshape(Shape{1, 1}).item() == -1);
    CHECK(Tensor::zeros(Shape{}).item() == 0);
    CHECK_THROWS_WITH_AS(s.at({0}), "at: index of 1 coordinates for a tensor of shape []", std::invalid_argument);
    CHECK_THROWS_WITH_AS(s.size(0), "size: axis 0 is out of range for a tensor of rank 0", std::invalid_argument);
}

TEST_CASE("item needs exactly one element, whatever the rank") {
    CHECK(Tensor::full(Shape{1, 1, 1}, 7).item() == 7);
    CHECK(Tensor{3}.item() == 3);
    CHECK_THROWS_WITH_AS((Tensor{1, 2}).item(), "item: needs a tensor with one element, got shape [2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(Tensor::zeros(Shape{0}).item(), "item: needs a tensor with one element, got shape [0]",
                         std::invalid_argument);
}

TEST_CASE("at is row-major, writable and bounds-checked") {
    Tensor m{{1, 2, 3}, {4, 5, 6}};
    CHECK(m.at({0, 0}) == 1);
    CHECK(m.at({1, 2}) == 6);
    CHECK(m.at({1, 0}) == 4);
    m.at({0, 2}) = 30;
    CHECK(m[2] == 30);
    const Tensor& cm = m;
    CHECK(cm.at({0, 2}) == 30);

    CHECK_THROWS_WITH_AS(m.at({1}), "at: index of 1 coordinates for a tensor of shape [2, 3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.at({0, 0, 0}), "at: index of 3 coordinates for a tensor of shape [2, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.at({0, 3}), "at: index 3 is out of range for axis 1 of shape [2, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(cm.at({2, 0}), "at: index 2 is out of range for axis 0 of shape [2, 3]",
                         std::invalid_argument);
}

TEST_CASE("size takes negative axes") {
    const Tensor t = Tensor::zeros(Shape{2, 3, 4});
    CHECK(t.size(0) == 2);
    CHECK(t.size(-1) == 4);
    CHECK(t.size(-3) == 2);
    CHECK_THROWS_WITH_AS(t.size(3), "size: axis 3 is out of range for a tensor of rank 3", std::invalid_argument);
    CHECK_THROWS_AS(t.size(-4), std::invalid_argument);
}

TEST_CASE("copies alias, clone copies") {
    Tensor a{1, 2, 3};
    Tensor alias = a;
    CHECK(alias.shares_storage_with(a));
    CHECK(a.use_count() == 2);
    alias[0] = 10;
    CHECK(a[0] == 10);

    Tensor copy = a.clone();
    CHECK_FALSE(copy.shares_storage_with(a));
    CHECK(copy.use_count() == 1);
    CHECK(tapeflow::equal(copy, a));
    copy[1] = 20;
    CHECK(a[1] == 2);

    a.fill(-1);
    CHECK(values(alias) == std::vector<double>{-1, -1, -1});
    CHECK(values(copy) == std::vector<double>{10, 20, 3});

    auto s = a.span();
    s[2] = 5;
    CHECK(alias[2] == 5);
    CHECK(a.to_vector() == std::vector<double>{-1, -1, 5});
}

TEST_CASE("reshape is a view with the same number of elements") {
    Tensor a = Tensor::arange(0, 6);
    Tensor m = a.reshape(Shape{2, 3});
    CHECK(m.shape() == Shape{2, 3});
    CHECK(m.shares_storage_with(a));
    CHECK(a.shape() == Shape{6});  // the original handle keeps its shape
    m.at({1, 0}) = 30;
    CHECK(a[3] == 30);
    CHECK(a.reshape(Shape{1, 6, 1}).shape() == Shape{1, 6, 1});
    CHECK(Tensor::zeros(Shape{0, 3}).reshape(Shape{3, 0}).shape() == Shape{3, 0});

    CHECK_THROWS_WITH_AS(a.reshape(Shape{4}), "reshape: cannot view shape [6] (6 elements) as [4] (4)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.reshape(Shape{}), "reshape: cannot view shape [2, 3] (6 elements) as [] (1)",
                         std::invalid_argument);
}

TEST_CASE("+= and -= update in place, broadcasting the right-hand side") {
    Tensor a{{1, 2, 3}, {4, 5, 6}};
    Tensor alias = a;
    a += Tensor{10, 20, 30};
    CHECK(values(alias) == std::vector<double>{11, 22, 33, 14, 25, 36});
    a -= Tensor(Shape{2, 1}, {1, 4});
    CHECK(values(a) == std::vector<double>{10, 21, 32, 10, 21, 32});
    a += Tensor::scalar(0.5);
    CHECK(values(a) == std::vector<double>{10.5, 21.5, 32.5, 10.5, 21.5, 32.5});
    a -= Tensor::ones(Shape{1, 1});
    CHECK(values(a) == std::vector<double>{9.5, 20.5, 31.5, 9.5, 20.5, 31.5});
    a -= a;  // aliasing itself: every element reads its own value before writing
    CHECK(values(a) == std::vector<double>(6, 0.0));

    Tensor b{1, 2};
    (b += Tensor{1, 1}) += Tensor{1, 1};  // returns *this
    CHECK(values(b) == std::vector<double>{3, 4});
    b *= -2;
    CHECK(values(b) == std::vector<double>{-6, -8});

    Tensor one = Tensor::ones(Shape{1, 1});
    one += Tensor::scalar(2);
    CHECK(one.item() == 3);
}

TEST_CASE("+= refuses a right-hand side that would grow the left") {
    Tensor a = Tensor::zeros(Shape{2, 3});
    CHECK_THROWS_WITH_AS(a += Tensor::zeros(Shape{2, 2, 3}),
                         "add_into: source shape [2, 2, 3] does not broadcast to destination shape [2, 3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(a -= Tensor::zeros(Shape{2}), "add_into: shapes [2, 3] and [2] cannot be broadcast together",
                         std::invalid_argument);
    Tensor col = Tensor::zeros(Shape{2, 1});
    CHECK_THROWS_AS(col += Tensor::zeros(Shape{1, 3}), std::invalid_argument);
    CHECK(values(col) == std::vector<double>{0, 0});  // untouched after the error
    Tensor s = Tensor::scalar(1);
    CHECK_THROWS_WITH_AS(s += Tensor::ones(Shape{1}),
                         "add_into: source shape [1] does not broadcast to destination shape []", std::invalid_argument);
}

TEST_CASE("equal compares shapes and every element exactly") {
    CHECK(tapeflow::equal(Tensor{1, 2}, Tensor{1, 2}));
    CHECK_FALSE(tapeflow::equal(Tensor{1, 2}, Tensor{1, 3}));
    CHECK_FALSE(tapeflow::equal(Tensor{1, 2, 3, 4}, Tensor{{1, 2}, {3, 4}}));
    CHECK(tapeflow::equal(Tensor{}, Tensor{}));
    CHECK_FALSE(tapeflow::equal(Tensor{}, Tensor::scalar(0)));
    CHECK_FALSE(tapeflow::equal(Tensor{quiet_nan}, Tensor{quiet_nan}));
}

TEST_CASE("allclose uses atol + rtol·|b| and treats equal infinities as close") {
    CHECK(tapeflow::allclose(Tensor{1.0}, Tensor{1.0 + 1e-10}, 1e-9, 0));
    CHECK_FALSE(tapeflow::allclose(Tensor{1.0}, Tensor{1.0 + 1e-8}, 1e-9, 0));
    CHECK(tapeflow::allclose(Tensor{0.0}, Tensor{1e-13}));
    CHECK_FALSE(tapeflow::allclose(Tensor{0.0}, Tensor{1e-11}));
    CHECK(tapeflow::allclose(Tensor{2.0}, Tensor{1.0}, 0, 1.0));
    CHECK_FALSE(tapeflow::allclose(Tensor{1, 2}, Tensor{{1, 2}}));
    CHECK_FALSE(tapeflow::allclose(Tensor{}, Tensor{}));
    CHECK(tapeflow::allclose(Tensor{-inf, inf, 1}, Tensor{-inf, inf, 1}));
    CHECK_FALSE(tapeflow::allclose(Tensor{inf}, Tensor{-inf}));
    CHECK_FALSE(tapeflow::allclose(Tensor{inf}, Tensor{1e308}));
    CHECK_FALSE(tapeflow::allclose(Tensor{1e308}, Tensor{inf}));
    CHECK_FALSE(tapeflow::allclose(Tensor{-inf}, Tensor{inf}, 1.0, 1.0));
    CHECK_FALSE(tapeflow::allclose(Tensor{quiet_nan}, Tensor{quiet_nan}));
}

TEST_CASE("max_abs_diff reports the worst element and never hides a NaN") {
    CHECK(tapeflow::max_abs_diff(Tensor{1, 2, 3}, Tensor{1, 2.5, 2}) == 1.0);
    CHECK(tapeflow::max_abs_diff(Tensor::zeros(Shape{0}), Tensor::zeros(Shape{0})) == 0.0);
    CHECK(std::isnan(tapeflow::max_abs_diff(Tensor{quiet_nan, 1}, Tensor{0, 1})));
    CHECK(std::isnan(tapeflow::max_abs_diff(Tensor{5, quiet_nan, 1}, Tensor{0, 0, 1})));
    CHECK(std::isnan(tapeflow::max_abs_diff(Tensor{1, 2}, Tensor{1, quiet_nan})));
    CHECK_THROWS_WITH_AS(tapeflow::max_abs_diff(Tensor{1, 2}, Tensor{{1, 2}}),
                         "max_abs_diff: shapes [2] and [1, 2] differ", std::invalid_argument);
    CHECK_THROWS_AS(tapeflow::max_abs_diff(Tensor{}, Tensor{1}), std::invalid_argument);
}
