#include "tensor/format.hpp"

#include <doctest/doctest.h>

#include <limits>
#include <numbers>

using tapeflow::Shape;
using tapeflow::Tensor;
using tapeflow::to_string;

TEST_CASE("a 0-d tensor prints its value and an empty shape") {
    CHECK(to_string(Tensor::scalar(1.5)) == "tensor(1.5, shape=[])");
    CHECK(to_string(Tensor::scalar(-2)) == "tensor(-2, shape=[])");
    CHECK(fmt::format("{}", Tensor::scalar(0.25)) == "tensor(0.25, shape=[])");
}

TEST_CASE("1-d and 2-d tensors print as nested brackets, rows aligned under the first") {
    CHECK(to_string(Tensor{1, 2.5, -3}) == "tensor([1, 2.5, -3], shape=[3])");
    CHECK(to_string(Tensor{{1, 2}, {3, 4}}) ==
          "tensor([[1, 2],\n"
          "        [3, 4]], shape=[2, 2])");
    CHECK(to_string(Tensor{{{1, 2}}, {{3, 4}}}) ==
          "tensor([[[1, 2]],\n"
          "        [[3, 4]]], shape=[2, 1, 2])");
    const Tensor column(Shape{3, 1}, {1, 2, 3});
    CHECK(fmt::format("{}", column) == to_string(column));
}

TEST_CASE("values use %g with the requested precision, including non-finite ones") {
    CHECK(to_string(Tensor{std::numbers::pi}) == "tensor([3.14159], shape=[1])");
    CHECK(to_string(Tensor{std::numbers::pi}, 3) == "tensor([3.14], shape=[1])");
    CHECK(to_string(Tensor{std::numbers::pi}, 17) == "tensor([3.1415926535897931], shape=[1])");
    CHECK(to_string(Tensor{1e-20, 123456789}) == "tensor([1e-20, 1.23457e+08], shape=[2])");
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(to_string(Tensor{inf, -inf, std::numeric_limits<double>::quiet_NaN()}) == "tensor([inf, -inf, nan], shape=[3])");
}

TEST_CASE("axes longer than 2·edge_items + 1 are elided with ...") {
    CHECK(to_string(Tensor::arange(0, 7)) == "tensor([0, 1, 2, 3, 4, 5, 6], shape=[7])");
    CHECK(to_string(Tensor::arange(0, 8)) == "tensor([0, 1, 2, ..., 5, 6, 7], shape=[8])");
    CHECK(to_string(Tensor::arange(0, 1000)) == "tensor([0, 1, 2, ..., 997, 998, 999], shape=[1000])");
    CHECK(to_string(Tensor::arange(0, 5), 6, 1) == "tensor([0, ..., 4], shape=[5])");
    CHECK(to_string(Tensor::arange(0, 20).reshape(Shape{5, 4}), 6, 1) ==
          "tensor([[0, ..., 3],\n"
          "        ...,\n"
          "        [16, ..., 19]], shape=[5, 4])");
}

TEST_CASE("empty and undefined tensors print without values") {
    CHECK(to_string(Tensor::zeros(Shape{0})) == "tensor([], shape=[0])");
    CHECK(to_string(Tensor::zeros(Shape{2, 0})) == "tensor([], shape=[2, 0])");
    CHECK(to_string(Tensor{}) == "tensor(undefined)");
    CHECK(fmt::format("{}", Tensor{}) == "tensor(undefined)");
}
