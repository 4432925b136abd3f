#include "tensor/broadcast.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/reduce.hpp"

using tapeflow::Rng;
using tapeflow::Shape;
using tapeflow::Tensor;
namespace detail = tapeflow::detail;

namespace {

// Bit-for-bit equality of shape and every element (NaNs included): the row-wise fast paths evaluate
// the same f on the same operands, and sum_to adds in the same order, so nothing may differ.
bool identical(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.numel() * sizeof(double)) == 0;
}

struct Pair {
    Shape a, b;
};

// Every pattern of the innermost stride (1/1, 1/0, 0/1, 0/0), outer broadcasting on either side,
// scalars, size-1 axes in the middle, rank 4, and empty tensors.
const Pair pairs[] = {
    {{5, 7}, {5, 7}},       {{5, 7}, {7}},          {{7}, {5, 7}},        {{5, 7}, {5, 1}},
    {{5, 1}, {5, 7}},       {{5, 1}, {1, 7}},       {{1, 7}, {5, 1}},     {{5, 7}, {}},
    {{}, {5, 7}},           {{}, {}},               {{5, 1}, {5, 1}},     {{1}, {5, 1}},
    {{3, 1, 4}, {2, 1}},    {{2, 3, 1, 4}, {3, 5, 1}}, {{2, 1, 4, 1}, {3, 1, 5}}, {{0, 3}, {3}},
    {{4, 0}, {4, 1}},       {{256, 784}, {784}},    {{256, 1}, {2}},
};

Tensor filled(const Shape& shape, Rng& rng) {
    Tensor t = tapeflow::randn(shape, rng);
    if (t.numel() > 2) t[1] = std::nan("");  // NaN must travel through the fast path like the reference
    return t;
}

}  // namespace

TEST_CASE("map_binary's row-wise loops give exactly the per-element reference, for every stride pattern") {
    Rng rng(11);
    auto sub = [](double x, double y) { return x - y; };  // not commutative: a swapped operand would show
    auto pick = [](double x, double y) { return x > y ? x : y * 0.5; };
    for (const Pair& p : pairs) {
        INFO("shapes " << p.a.str() << " and " << p.b.str());
        const Tensor a = filled(p.a, rng);
        const Tensor b = filled(p.b, rng);
        CHECK(identical(detail::map_binary(a, b, sub, "test"), detail::map_binary_reference(a, b, sub, "test")));
        CHECK(identical(detail::map_binary(a, b, pick, "test"), detail::map_binary_reference(a, b, pick, "test")));
    }
}

TEST_CASE("map_ternary's row-wise loop gives exactly the per-element reference") {
    Rng rng(12);
    auto f = [](double x, double y, double z) { return x * y - z; };
    const Shape thirds[] = {{7}, {5, 1}, {}, {1, 7}};
    for (const Pair& p : pairs)
        for (const Shape& c_shape : thirds) {
            INFO("shapes " << p.a.str() << ", " << p.b.str() << " and " << c_shape.str());
            const Tensor a = filled(p.a, rng);
            const Tensor b = filled(p.b, rng);
            const Tensor c = filled(c_shape, rng);
            bool broadcastable = true;
            try {
                (void)tapeflow::broadcast_shapes(tapeflow::broadcast_shapes(p.a, p.b, "t"), c_shape, "t");
            } catch (const std::invalid_argument&) {
                broadcastable = false;
            }
            if (!broadcastable) {
                CHECK_THROWS_AS(detail::map_ternary(a, b, c, f, "test"), std::invalid_argument);
                continue;
            }
            CHECK(identical(detail::map_ternary(a, b, c, f, "test"), detail::map_ternary_reference(a, b, c, f, "test")));
        }
}

TEST_CASE("sum_to's block and row-wise loops give exactly the per-element reference") {
    Rng rng(13);
    const Pair cases[] = {
        // {from, to}
        {{5, 7}, {7}},       {{5, 7}, {5, 1}},    {{5, 7}, {1, 7}},       {{5, 7}, {}},        {{5, 7}, {1}},
        {{2, 3, 4}, {3, 1}}, {{2, 3, 4}, {1, 1, 4}}, {{2, 3, 4}, {2, 1, 1}}, {{256, 784}, {784}}, {{0, 3}, {3}},
        {{4, 0}, {4, 1}},    {{5, 7}, {5, 7}},
        // the contiguous block paths (summed leading/trailing axes around a kept block) and the walk
        // they fall back to (kept, summed, kept)
        {{256, 2}, {256, 1}}, {{2, 3, 4}, {1, 3, 1}}, {{3, 1, 4, 5}, {1, 1, 4, 1}}, {{2, 3, 4}, {2, 3, 1}},
        {{4, 2, 3}, {4, 1, 3}}, {{2, 3, 4, 5}, {2, 1, 4, 1}}, {{1, 6}, {6}},
    };
    for (const Pair& p : cases) {
        INFO("sum_to " << p.a.str() << " → " << p.b.str());
        const Tensor a = filled(p.a, rng);
        CHECK(identical(tapeflow::sum_to(a, p.b), detail::sum_to_reference(a, p.b)));
    }
}

TEST_CASE("sum_to_reference checks its shapes like sum_to") {
    const Tensor a = Tensor::zeros(Shape{3});
    CHECK_THROWS_WITH_AS(detail::sum_to_reference(a, Shape{2, 3}),
                         doctest::Contains("sum_to: shape [2, 3] does not broadcast to [3]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(tapeflow::sum_to(a, Shape{2, 3}), doctest::Contains("sum_to: shape [2, 3] does not broadcast to [3]"),
                         std::invalid_argument);
}
