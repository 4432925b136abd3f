#include "flows/permutation.hpp"

#include <algorithm>
#include <stdexcept>

#include <doctest/doctest.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/conformance.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

TEST_CASE("Permutation: x_j = z_π(j), z by the inverse permutation, log-det 0") {
    Permutation p({2, 0, 1});
    CHECK(p.dim() == 3);
    CHECK(p.name() == "Permutation([2, 0, 1])");
    CHECK(p.inverse_permutation() == std::vector<std::size_t>{1, 2, 0});
    CHECK(p.parameters().empty());
    const Tensor z{{10, 20, 30}, {1, 2, 3}};
    const Transformed x = p.forward(Var(z));
    CHECK(equal(x.value.value(), Tensor{{30, 10, 20}, {3, 1, 2}}));
    CHECK(equal(x.log_abs_det_jacobian.value(), Tensor{0, 0}));
    const Transformed back = p.inverse(x.value);
    CHECK(equal(back.value.value(), z));
    CHECK(equal(back.log_abs_det_jacobian.value(), Tensor{0, 0}));
}

TEST_CASE("Permutation: reverse and random") {
    CHECK(Permutation::reverse(4)->permutation() == std::vector<std::size_t>{3, 2, 1, 0});
    Rng a(7), b(7);
    const auto p = Permutation::random(10, a);
    CHECK(p->permutation() == Permutation::random(10, b)->permutation());  // same seed, same permutation
    std::vector<std::size_t> sorted = p->permutation();
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t j = 0; j < 10; ++j) CHECK(sorted[j] == j);
    CHECK(Permutation::random(40, a)->name() == "Permutation(D = 40)");
}

TEST_CASE("Permutation: invalid lists are rejected with the offending entry") {
    CHECK_THROWS_WITH_AS(Permutation(std::vector<std::size_t>{}), doctest::Contains("D ≥ 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Permutation({0, 3, 1}), doctest::Contains("entry 1 is 3, outside 0..2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Permutation({1, 0, 1}), doctest::Contains("entry 2 repeats the index 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(Permutation::reverse(0), doctest::Contains("Permutation::reverse: the dimension D must be at least 1"),
                         std::invalid_argument);
    Rng rng(0);
    CHECK_THROWS_WITH_AS(Permutation::random(0, rng), doctest::Contains("Permutation::random"), std::invalid_argument);
    Permutation p({1, 0});
    CHECK_THROWS_WITH_AS(p.forward(Var(Tensor{{1, 2, 3}})), doctest::Contains("Permutation::forward: expects dimension D = 2"),
                         std::invalid_argument);
}

TEST_CASE("Permutation: conformance in D = 2, 3, 6") {
    Rng rng(3);
    for (const std::size_t d : {2, 3, 6}) {
        CAPTURE(d);
        const auto p = Permutation::random(d, rng);
        CHECK_BIJECTOR(*p, randn(Shape{16, d}, rng), {.mc_samples = 5000});
    }
    CHECK_BIJECTOR(*Permutation::reverse(2), randn(Shape{8, 2}, rng));
}

TEST_CASE("Permutation: gradients flow back to the permuted coordinates") {
    Permutation p({1, 2, 0});
    Tape& tape = Tape::current();
    tape.clear();
    const Var z = tape.variable(Tensor{{1, 2, 3}});
    const Var x = p.forward(z).value;
    tape.backward(sum(x * Var(Tensor{{10, 20, 30}})));
    // x = (z₁, z₂, z₀): ∂/∂z = (30, 10, 20).
    CHECK(equal(z.grad(), Tensor{{30, 10, 20}}));
    tape.clear();
}
