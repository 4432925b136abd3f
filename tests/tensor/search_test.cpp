// searchsorted against numpy.searchsorted's documented results: both sides, ties, values outside the
// range, NaN, per-row sequences, and the malformed inputs it rejects.
#include "tensor/search.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

using namespace tapeflow;

TEST_CASE("searchsorted: left and right sides, as numpy.searchsorted") {
    const Tensor knots{1.0, 2.0, 2.0, 3.0};
    // numpy.searchsorted([1, 2, 2, 3], [0, 1, 2, 2.5, 3, 4], side=…) gives
    //   left  [0, 0, 1, 3, 3, 4]   right [0, 1, 3, 3, 4, 4]
    const Tensor v{0.0, 1.0, 2.0, 2.5, 3.0, 4.0};
    CHECK(equal(searchsorted(knots, v), Tensor{0.0, 0.0, 1.0, 3.0, 3.0, 4.0}));
    CHECK(equal(searchsorted(knots, v, Side::right), Tensor{0.0, 1.0, 3.0, 3.0, 4.0, 4.0}));
    CHECK(equal(searchsorted(knots, Tensor{std::nan("")}), Tensor{4.0}));  // NaN sorts last
    CHECK(equal(searchsorted(Tensor::zeros({0}), Tensor{1.0}), Tensor{0.0}));
}

TEST_CASE("searchsorted: a 1-D sequence is shared, a [..., K] one is per row") {
    const Tensor shared = searchsorted(Tensor{0.0, 1.0, 2.0}, Tensor{{0.5, 1.5}, {-1.0, 9.0}});
    CHECK(equal(shared, Tensor{{1.0, 2.0}, {0.0, 3.0}}));
    const Tensor rows{{0.0, 1.0, 2.0}, {10.0, 20.0, 30.0}};
    CHECK(equal(searchsorted(rows, Tensor(Shape{2, 1}, {1.5, 1.5}), Side::right), Tensor(Shape{2, 1}, {2.0, 0.0})));
    CHECK(searchsorted(rows, Tensor::zeros({2, 0})).shape() == Shape{2, 0});
}

TEST_CASE("searchsorted rejects unsorted sequences and mismatched leading sizes") {
    CHECK_THROWS_WITH_AS(searchsorted(Tensor{1.0, 3.0, 2.0}, Tensor{1.0}), doctest::Contains("not ascending"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(searchsorted(Tensor{1.0, std::nan("")}, Tensor{1.0}), doctest::Contains("NaN"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(searchsorted(Tensor{{1.0, 2.0}, {1.0, 2.0}}, Tensor(Shape{3, 1}, {1.0, 1.0, 1.0})),
                         doctest::Contains("leading sizes"), std::invalid_argument);
    CHECK_THROWS_AS(searchsorted(Tensor::scalar(1.0), Tensor{1.0}), std::invalid_argument);
}
