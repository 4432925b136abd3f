#include "tensor/shape_ops.hpp"

#include <doctest/doctest.h>

#include <array>
#include <stdexcept>
#include <vector>

using tapeflow::Shape;
using tapeflow::Tensor;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector(); }

Tensor iota(const Shape& shape) { return Tensor::arange(0, static_cast<double>(shape.numel())).reshape(shape); }

}  // namespace

TEST_CASE("reshape and flatten are views") {
    const Tensor x = iota(Shape{2, 3});
    const Tensor r = tapeflow::reshape(x, Shape{3, 2});
    CHECK(r.shape() == Shape{3, 2});
    CHECK(r.shares_storage_with(x));
    CHECK(values(r) == values(x));
    const Tensor f = tapeflow::flatten(iota(Shape{2, 1, 3}));
    CHECK(f.shape() == Shape{6});
    CHECK(values(f) == std::vector<double>{0, 1, 2, 3, 4, 5});
    CHECK(tapeflow::flatten(Tensor::scalar(4)).shape() == Shape{1});
    CHECK_THROWS_WITH_AS(tapeflow::reshape(x, Shape{4}), "reshape: cannot view shape [2, 3] (6 elements) as [4] (4)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::flatten(Tensor{}), "flatten: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("unsqueeze inserts a size-1 axis at any of rank + 1 positions") {
    const Tensor x = iota(Shape{2, 3});
    CHECK(tapeflow::unsqueeze(x, 0).shape() == Shape{1, 2, 3});
    CHECK(tapeflow::unsqueeze(x, 1).shape() == Shape{2, 1, 3});
    CHECK(tapeflow::unsqueeze(x, 2).shape() == Shape{2, 3, 1});
    CHECK(tapeflow::unsqueeze(x, -1).shape() == Shape{2, 3, 1});
    CHECK(tapeflow::unsqueeze(x, -3).shape() == Shape{1, 2, 3});
    CHECK(tapeflow::unsqueeze(Tensor::scalar(1), 0).shape() == Shape{1});
    CHECK(tapeflow::unsqueeze(x, 1).shares_storage_with(x));
    CHECK_THROWS_WITH_AS(tapeflow::unsqueeze(x, 3), "unsqueeze: axis 3 is out of range for a tensor of rank 3",
                         std::invalid_argument);
    CHECK_THROWS_AS(tapeflow::unsqueeze(x, -4), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::unsqueeze(Tensor{}, 0), "unsqueeze: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("squeeze removes one size-1 axis and refuses any other") {
    const Tensor x = iota(Shape{2, 1, 3, 1});
    CHECK(tapeflow::squeeze(x, 1).shape() == Shape{2, 3, 1});
    CHECK(tapeflow::squeeze(x, -1).shape() == Shape{2, 1, 3});
    CHECK(values(tapeflow::squeeze(x, 1)) == values(x));
    CHECK(tapeflow::squeeze(Tensor{7}, 0).shape() == Shape{});
    CHECK(tapeflow::squeeze(tapeflow::unsqueeze(x, 2), 2).shape() == x.shape());
    CHECK_THROWS_WITH_AS(tapeflow::squeeze(x, 0), "squeeze: axis 0 of shape [2, 1, 3, 1] has size 2, not 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::squeeze(x, -2), "squeeze: axis -2 of shape [2, 1, 3, 1] has size 3, not 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::squeeze(x, 4), "squeeze: axis 4 is out of range for a tensor of rank 4",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::squeeze(Tensor::scalar(1), 0),
                         "squeeze: axis 0 is out of range for a tensor of rank 0", std::invalid_argument);
}

TEST_CASE("transpose swaps the last two axes, batch by batch") {
    const Tensor m{{1, 2, 3}, {4, 5, 6}};
    const Tensor t = tapeflow::transpose(m);
    CHECK(t.shape() == Shape{3, 2});
    CHECK(values(t) == std::vector<double>{1, 4, 2, 5, 3, 6});
    CHECK_FALSE(t.shares_storage_with(m));
    CHECK(tapeflow::equal(tapeflow::transpose(t), m));

    const Tensor b = iota(Shape{2, 2, 3});
    const Tensor bt = tapeflow::transpose(b);
    CHECK(bt.shape() == Shape{2, 3, 2});
    CHECK(values(bt) == std::vector<double>{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11});
    CHECK(tapeflow::transpose(Tensor::zeros(Shape{0, 3})).shape() == Shape{3, 0});

    CHECK_THROWS_WITH_AS(tapeflow::transpose(Tensor{1, 2, 3}), "transpose: needs rank ≥ 2, got shape [3]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::transpose(Tensor{}), "transpose: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("permute of a 3-D tensor matches index arithmetic for all six orders") {
    const Tensor x = iota(Shape{2, 3, 4});
    const std::vector<std::vector<std::size_t>> orders{{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                                       {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (const auto& axes : orders) {
        CAPTURE(axes[0]);
        CAPTURE(axes[1]);
        CAPTURE(axes[2]);
        const Tensor p = tapeflow::permute(x, axes);
        REQUIRE(p.shape() == Shape{x.shape()[axes[0]], x.shape()[axes[1]], x.shape()[axes[2]]});
        // p[i0, i1, i2] = x[j] where j places i_k at input axis axes[k].
        std::size_t mismatches = 0;
        for (std::size_t i0 = 0; i0 < p.shape()[0]; ++i0)
            for (std::size_t i1 = 0; i1 < p.shape()[1]; ++i1)
                for (std::size_t i2 = 0; i2 < p.shape()[2]; ++i2) {
                    std::array<std::size_t, 3> j{};
                    j[axes[0]] = i0;
                    j[axes[1]] = i1;
                    j[axes[2]] = i2;
                    if (p.at({i0, i1, i2}) != x.at({j[0], j[1], j[2]})) ++mismatches;
                }
        CHECK(mismatches == 0);
    }
    // (1, 2, 0) then its inverse (2, 0, 1) is the identity.
    CHECK(tapeflow::equal(tapeflow::permute(tapeflow::permute(x, {1, 2, 0}), {2, 0, 1}), x));
    CHECK(tapeflow::permute(Tensor::scalar(3), {}).item() == 3);
    CHECK(tapeflow::permute(Tensor::zeros(Shape{2, 0, 3}), {2, 0, 1}).shape() == Shape{3, 2, 0});
}

TEST_CASE("permute accepts only a permutation of the axes") {
    const Tensor x = iota(Shape{2, 3, 4});
    CHECK_THROWS_WITH_AS(tapeflow::permute(x, {0, 1}), "permute: 2 axes given for a tensor of shape [2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::permute(x, {0, 1, 1}), "permute: [0, 1, 1] is not a permutation of the axes of [2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::permute(x, {0, 1, 3}), "permute: [0, 1, 3] is not a permutation of the axes of [2, 3, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::permute(Tensor{}, {}), "permute: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("narrow copies a range along one axis") {
    const Tensor x = iota(Shape{2, 4, 2});
    const Tensor n = tapeflow::narrow(x, 1, 1, 2);
    CHECK(n.shape() == Shape{2, 2, 2});
    CHECK(values(n) == std::vector<double>{2, 3, 4, 5, 10, 11, 12, 13});
    CHECK_FALSE(n.shares_storage_with(x));
    CHECK(values(tapeflow::narrow(x, 0, 1, 1)) == std::vector<double>{8, 9, 10, 11, 12, 13, 14, 15});
    CHECK(values(tapeflow::narrow(x, -1, 1, 1)) == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15});
    CHECK(tapeflow::narrow(x, 1, 4, 0).shape() == Shape{2, 0, 2});
    CHECK(tapeflow::equal(tapeflow::narrow(x, 1, 0, 4), x));

    CHECK_THROWS_WITH_AS(tapeflow::narrow(x, 1, 2, 3), "narrow: [2, 5) is out of range for axis 1 of shape [2, 4, 2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::narrow(x, 1, 5, 0), "narrow: [5, 5) is out of range for axis 1 of shape [2, 4, 2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::narrow(x, 3, 0, 1), "narrow: axis 3 is out of range for a tensor of rank 3",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::narrow(Tensor{}, 0, 0, 0), "narrow: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("concat joins along any axis") {
    const Tensor a{{1, 2}, {3, 4}};
    const Tensor b{{5, 6}};
    const Tensor c(Shape{2, 1}, {7, 8});
    CHECK(tapeflow::equal(tapeflow::concat({a, b}, 0), Tensor{{1, 2}, {3, 4}, {5, 6}}));
    CHECK(tapeflow::equal(tapeflow::concat({a, Tensor(Shape{2, 1}, {7, 8})}, 1), Tensor{{1, 2, 7}, {3, 4, 8}}));
    CHECK(tapeflow::equal(tapeflow::concat({c, a, c}, -1), Tensor{{7, 1, 2, 7}, {8, 3, 4, 8}}));
    CHECK(tapeflow::equal(tapeflow::concat({a}, 0), a));
    CHECK_FALSE(tapeflow::concat({a}, 0).shares_storage_with(a));
    CHECK(tapeflow::equal(tapeflow::concat({Tensor{1, 2}, Tensor::zeros(Shape{0}), Tensor{3}}, 0), Tensor{1, 2, 3}));
    const Tensor x = iota(Shape{2, 3, 2});
    const auto parts = tapeflow::split(x, 1, {1, 2});
    CHECK(tapeflow::equal(tapeflow::concat(parts, 1), x));
}

TEST_CASE("concat rejects no parts and parts that differ outside the axis") {
    const Tensor a = Tensor::zeros(Shape{2, 3});
    CHECK_THROWS_WITH_AS(tapeflow::concat({}, 0), "concat: needs at least one tensor", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::concat({a, Tensor::zeros(Shape{2, 4})}, 0),
                         "concat: shapes [2, 3] and [2, 4] differ outside axis 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::concat({a, Tensor::zeros(Shape{3})}, 1),
                         "concat: shapes [2, 3] and [3] differ outside axis 1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::concat({a, a}, 2), "concat: axis 2 is out of range for a tensor of rank 2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::concat({Tensor::scalar(1), Tensor::scalar(2)}, 0),
                         "concat: axis 0 is out of range for a tensor of rank 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::concat({a, Tensor{}}, 0), "concat: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("split cuts consecutive pieces of the given sizes") {
    const Tensor x = iota(Shape{2, 5});
    const auto pieces = tapeflow::split(x, 1, {2, 0, 3});
    REQUIRE(pieces.size() == 3);
    CHECK(tapeflow::equal(pieces[0], Tensor{{0, 1}, {5, 6}}));
    CHECK(pieces[1].shape() == Shape{2, 0});
    CHECK(tapeflow::equal(pieces[2], Tensor{{2, 3, 4}, {7, 8, 9}}));
    CHECK(tapeflow::split(x, 0, {1, 1}).size() == 2);
    CHECK_THROWS_WITH_AS(tapeflow::split(x, 1, {2, 2}), "split: sizes [2, 2] add up to 4, but axis 1 of [2, 5] has 5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::split(x, -3, {2}), "split: axis -3 is out of range for a tensor of rank 2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::split(Tensor{}, 0, {}), "split: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("chunk makes ceil(len / n)-sized pieces with a smaller last one, as torch.chunk") {
    const auto sizes = [](const std::vector<Tensor>& pieces, int axis) {
        std::vector<std::size_t> s;
        for (const Tensor& p : pieces) s.push_back(p.size(axis));
        return s;
    };
    const Tensor x = Tensor::arange(0, 7);
    CHECK(sizes(tapeflow::chunk(x, 3, 0), 0) == std::vector<std::size_t>{3, 3, 1});
    CHECK(sizes(tapeflow::chunk(x, 1, 0), 0) == std::vector<std::size_t>{7});
    CHECK(sizes(tapeflow::chunk(x, 7, 0), 0) == std::vector<std::size_t>{1, 1, 1, 1, 1, 1, 1});
    CHECK(sizes(tapeflow::chunk(x, 10, 0), 0) == std::vector<std::size_t>{1, 1, 1, 1, 1, 1, 1});
    // 6 into 4: pieces of 2 leave only three pieces, exactly as torch.chunk does.
    CHECK(sizes(tapeflow::chunk(Tensor::arange(0, 6), 4, 0), 0) == std::vector<std::size_t>{2, 2, 2});
    const auto halves = tapeflow::chunk(iota(Shape{3, 4}), 2, -1);
    REQUIRE(halves.size() == 2);
    CHECK(tapeflow::equal(halves[0], Tensor{{0, 1}, {4, 5}, {8, 9}}));
    CHECK(tapeflow::equal(halves[1], Tensor{{2, 3}, {6, 7}, {10, 11}}));
    CHECK(tapeflow::chunk(Tensor::zeros(Shape{0}), 2, 0).empty());
    CHECK_THROWS_WITH_AS(tapeflow::chunk(x, 0, 0), "chunk: the number of chunks must be positive",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::chunk(x, 2, 1), "chunk: axis 1 is out of range for a tensor of rank 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::chunk(Tensor{}, 2, 0), "chunk: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("index_select picks entries in the given order, repeats included") {
    const Tensor x = iota(Shape{3, 2});
    CHECK(tapeflow::equal(tapeflow::index_select(x, 0, {2, 0, 2}), Tensor{{4, 5}, {0, 1}, {4, 5}}));
    CHECK(tapeflow::equal(tapeflow::index_select(x, 1, {1, 1, 0}), Tensor{{1, 1, 0}, {3, 3, 2}, {5, 5, 4}}));
    CHECK(tapeflow::equal(tapeflow::index_select(x, -1, {1, 0}), Tensor{{1, 0}, {3, 2}, {5, 4}}));
    CHECK(tapeflow::index_select(x, 0, {}).shape() == Shape{0, 2});
    const Tensor b = iota(Shape{2, 3, 2});
    CHECK(values(tapeflow::index_select(b, 1, {2, 0})) == std::vector<double>{4, 5, 0, 1, 10, 11, 6, 7});
    CHECK_THROWS_WITH_AS(tapeflow::index_select(x, 0, {0, 3}),
                         "index_select: index 3 is out of range for axis 0 of shape [3, 2]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::index_select(x, 2, {0}),
                         "index_select: axis 2 is out of range for a tensor of rank 2", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::index_select(Tensor{}, 0, {0}),
                         "index_select: the tensor is undefined (empty handle)", std::invalid_argument);
}

TEST_CASE("broadcast_to materializes broadcasting into new storage") {
    CHECK(tapeflow::equal(tapeflow::broadcast_to(Tensor{1, 2, 3}, Shape{2, 3}), Tensor{{1, 2, 3}, {1, 2, 3}}));
    CHECK(tapeflow::equal(tapeflow::broadcast_to(Tensor(Shape{2, 1}, {1, 2}), Shape{2, 3}),
                          Tensor{{1, 1, 1}, {2, 2, 2}}));
    CHECK(tapeflow::equal(tapeflow::broadcast_to(Tensor::scalar(5), Shape{2, 2}), Tensor::full(Shape{2, 2}, 5)));
    CHECK(tapeflow::equal(tapeflow::broadcast_to(Tensor{{1, 2}}, Shape{2, 1, 2}),
                          Tensor{{{1, 2}}, {{1, 2}}}));
    CHECK(tapeflow::broadcast_to(Tensor{1}, Shape{0}).shape() == Shape{0});
    const Tensor same{1, 2};
    const Tensor copy = tapeflow::broadcast_to(same, Shape{2});
    CHECK(tapeflow::equal(copy, same));
    CHECK_FALSE(copy.shares_storage_with(same));

    CHECK_THROWS_WITH_AS(tapeflow::broadcast_to(Tensor{1, 2, 3}, Shape{2, 4}),
                         "broadcast_to: shapes [3] and [2, 4] cannot be broadcast together", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::broadcast_to(Tensor::zeros(Shape{2, 3}), Shape{3}),
                         "broadcast_to: shape [2, 3] cannot be broadcast to [3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::broadcast_to(Tensor::zeros(Shape{2, 1}), Shape{1, 3}),
                         "broadcast_to: shape [2, 1] cannot be broadcast to [1, 3]", std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::broadcast_to(Tensor{}, Shape{}), "broadcast_to: the tensor is undefined (empty handle)",
                         std::invalid_argument);
}

TEST_CASE("take_along_axis picks per row and rejects indices that do not fit") {
    const Tensor a{{10.0, 11.0, 12.0}, {20.0, 21.0, 22.0}};
    CHECK(equal(take_along_axis(a, Tensor{{2.0, 2.0}, {1.0, 0.0}}, 1), Tensor{{12.0, 12.0}, {21.0, 20.0}}));
    CHECK(equal(take_along_axis(a, Tensor{{1.0, 0.0, 0.0}}, -2), Tensor{{20.0, 11.0, 12.0}}));
    CHECK_THROWS_WITH_AS(take_along_axis(a, Tensor(Shape{2, 1}, {3.0, 0.0}), 1), doctest::Contains("index 3"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(take_along_axis(a, Tensor(Shape{2, 1}, {0.5, 0.0}), 1), doctest::Contains("whole number"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(take_along_axis(a, Tensor(Shape{3, 1}, {0.0, 0.0, 0.0}), 1), doctest::Contains("do not fit"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(take_along_axis(a, Tensor{0.0}, 1), doctest::Contains("do not fit"), std::invalid_argument);
}
