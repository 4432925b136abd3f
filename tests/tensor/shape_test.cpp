#include "tensor/shape.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

using tapeflow::broadcast_shapes;
using tapeflow::contiguous_strides;
using tapeflow::normalize_axis;
using tapeflow::Shape;

TEST_CASE("a shape stores its dimensions inline and counts elements") {
    const Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s.numel() == 24);
    CHECK(s[0] == 2);
    CHECK(s[2] == 4);
    CHECK(std::vector<std::size_t>(s.begin(), s.end()) == std::vector<std::size_t>{2, 3, 4});

    const Shape scalar;
    CHECK(scalar.rank() == 0);
    CHECK(scalar.numel() == 1);  // the empty product: a 0-d tensor holds one value
    CHECK(Shape{2, 0, 3}.numel() == 0);

    Shape grown;
    grown.push_back(5);
    grown.push_back(1);
    CHECK(grown == Shape{5, 1});
    grown[1] = 7;
    CHECK(grown == Shape{5, 7});

    const std::array<std::size_t, 2> dims{4, 1};
    CHECK(Shape(std::span<const std::size_t>(dims)) == Shape{4, 1});
}

TEST_CASE("shapes are equal when their ranks and every dimension agree") {
    CHECK(Shape{2, 3} == Shape{2, 3});
    CHECK_FALSE(Shape{2, 3} == Shape{3, 2});
    CHECK_FALSE(Shape{3} == Shape{1, 3});
    CHECK_FALSE(Shape{} == Shape{1});
    CHECK(Shape{} == Shape{});
}

TEST_CASE("a shape prints as a bracketed list, directly and through fmt") {
    CHECK(Shape{2, 3}.str() == "[2, 3]");
    CHECK(Shape{7}.str() == "[7]");
    CHECK(Shape{}.str() == "[]");
    CHECK(fmt::format("{}", Shape{1, 0, 2}) == "[1, 0, 2]");
    CHECK(fmt::format("<{:>8}>", Shape{4}) == "<     [4]>");  // string_view specs apply
}

TEST_CASE("a shape refuses more than max_rank axes") {
    const std::vector<std::size_t> nine(Shape::max_rank + 1, 1);
    CHECK_THROWS_WITH_AS(Shape(std::span<const std::size_t>(nine)), "Shape: rank 9 exceeds the maximum rank 8",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((Shape{1, 1, 1, 1, 1, 1, 1, 1, 1}), "Shape: rank 9 exceeds the maximum rank 8",
                         std::invalid_argument);

    Shape full{1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(full.rank() == Shape::max_rank);
    CHECK_THROWS_WITH_AS(full.push_back(9), "Shape: cannot grow [1, 2, 3, 4, 5, 6, 7, 8] beyond rank 8",
                         std::invalid_argument);
    CHECK(full.rank() == Shape::max_rank);
}

TEST_CASE("normalize_axis maps negative axes from the end and rejects the rest") {
    CHECK(normalize_axis(0, 3, "op") == 0);
    CHECK(normalize_axis(2, 3, "op") == 2);
    CHECK(normalize_axis(-1, 3, "op") == 2);
    CHECK(normalize_axis(-3, 3, "op") == 0);

    CHECK_THROWS_WITH_AS(normalize_axis(3, 3, "sum"), "sum: axis 3 is out of range for a tensor of rank 3",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(normalize_axis(-4, 3, "max"), "max: axis -4 is out of range for a tensor of rank 3",
                         std::invalid_argument);
    // A 0-d tensor has no axis at all, not even −1.
    CHECK_THROWS_WITH_AS(normalize_axis(0, 0, "squeeze"), "squeeze: axis 0 is out of range for a tensor of rank 0",
                         std::invalid_argument);
    CHECK_THROWS_AS(normalize_axis(-1, 0, "squeeze"), std::invalid_argument);
}

TEST_CASE("broadcast_shapes aligns trailing axes and stretches size-1 axes") {
    CHECK(broadcast_shapes(Shape{2, 3}, Shape{2, 3}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{2, 3}, Shape{3}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{3}, Shape{2, 3}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{2, 1}, Shape{1, 3}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{4, 1, 3}, Shape{5, 1}, "op") == Shape{4, 5, 3});
    CHECK(broadcast_shapes(Shape{5, 1}, Shape{4, 1, 3}, "op") == Shape{4, 5, 3});
    CHECK(broadcast_shapes(Shape{}, Shape{2, 3}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{2, 3}, Shape{}, "op") == Shape{2, 3});
    CHECK(broadcast_shapes(Shape{}, Shape{}, "op") == Shape{});
    CHECK(broadcast_shapes(Shape{1}, Shape{}, "op") == Shape{1});
    // A size-1 axis stretches to 0 as to any other size; 0 against 2 is a mismatch.
    CHECK(broadcast_shapes(Shape{0, 3}, Shape{1, 3}, "op") == Shape{0, 3});
    CHECK(broadcast_shapes(Shape{1}, Shape{0}, "op") == Shape{0});
    CHECK_THROWS_AS(broadcast_shapes(Shape{0}, Shape{2}, "op"), std::invalid_argument);
}

TEST_CASE("broadcast_shapes names the op and both shapes when they do not broadcast") {
    CHECK_THROWS_WITH_AS(broadcast_shapes(Shape{2, 3}, Shape{2}, "add"),
                         "add: shapes [2, 3] and [2] cannot be broadcast together", std::invalid_argument);
    CHECK_THROWS_WITH_AS(broadcast_shapes(Shape{4, 2, 3}, Shape{3, 1, 3}, "mul"),
                         "mul: shapes [4, 2, 3] and [3, 1, 3] cannot be broadcast together", std::invalid_argument);
}

TEST_CASE("contiguous_strides are row-major element strides") {
    const auto s = contiguous_strides(Shape{2, 3, 4});
    CHECK(s[0] == 12);
    CHECK(s[1] == 4);
    CHECK(s[2] == 1);
    const auto t = contiguous_strides(Shape{5});
    CHECK(t[0] == 1);
    const auto u = contiguous_strides(Shape{3, 1, 2});
    CHECK(u[0] == 2);
    CHECK(u[1] == 2);
    CHECK(u[2] == 1);
}

TEST_CASE("a shape whose element count overflows size_t is refused where it is made") {
    constexpr std::size_t big = (std::size_t{1} << 62) + 1;  // × 4 wraps to 4 without the check
    CHECK_THROWS_WITH_AS(Shape({big, 4}), doctest::Contains("Shape [4611686018427387905, 4]: the element count"),
                         std::invalid_argument);
    CHECK_THROWS_AS(broadcast_shapes(Shape{std::size_t{1} << 33, 1}, Shape{1, std::size_t{1} << 33}, "add"),
                    std::invalid_argument);
    Shape grown{big};
    CHECK_THROWS_AS(grown.push_back(4), std::invalid_argument);
    CHECK(grown == Shape{big});  // unchanged by the refused push_back
    // A dim changed in place is caught when the shape is next used.
    Shape edited{2, 2};
    edited[0] = big;
    edited[1] = 4;
    CHECK_THROWS_AS((void)edited.numel(), std::invalid_argument);
    CHECK_THROWS_AS((void)contiguous_strides(edited), std::invalid_argument);
    // A zero dim makes any shape empty, however large the other dims.
    CHECK(Shape{SIZE_MAX, 0, SIZE_MAX}.numel() == 0);
    CHECK(Shape{SIZE_MAX}.numel() == SIZE_MAX);
}
