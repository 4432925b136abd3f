// Matrix products: gradchecks of matmul, matmul_tn and matmul_nt for 2-D operands, batched 3-D ones,
// and a 2-D operand shared across the batch of the other (on either side), with one operand constant
// too; values identical to the tensor ops'.
#include "autograd/linalg.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "tensor/format.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tests/autograd/check_gradients.hpp"

using namespace tapeflow;
using Vars = std::vector<Var>;

namespace {

// Operand shapes for C = A·B with M = 3, K = 4, N = 2 and a batch of 2, before any transposition.
struct Case {
    const char* name;
    Shape a, b;  // of A and B as they are multiplied
};
const std::vector<Case> cases = {
    {"2-D x 2-D", {3, 4}, {4, 2}},
    {"3-D x 3-D", {2, 3, 4}, {2, 4, 2}},
    {"2-D x 3-D", {3, 4}, {2, 4, 2}},
    {"3-D x 2-D", {2, 3, 4}, {4, 2}},
};

// The shape of the stored operand whose last two axes are the transpose of `s`.
Shape transposed(Shape s) {
    const std::size_t r = s.rank();
    std::swap(s[r - 1], s[r - 2]);
    return s;
}

}  // namespace

TEST_CASE("matmul, matmul_tn and matmul_nt: gradients for 2-D, batched and mixed operands") {
    Rng rng(31);
    for (const Case& c : cases) {
        INFO(c.name);
        const Tensor a = randn(c.a, rng);
        const Tensor b = randn(c.b, rng);
        const Tensor at = randn(transposed(c.a), rng);  // stored as Aᵀ for matmul_tn
        const Tensor bt = randn(transposed(c.b), rng);  // stored as Bᵀ for matmul_nt
        CHECK_GRADCHECK([](const Vars& v) { return matmul(v[0], v[1]); }, {a, b});
        CHECK_GRADCHECK([](const Vars& v) { return matmul_tn(v[0], v[1]); }, {at, b});
        CHECK_GRADCHECK([](const Vars& v) { return matmul_nt(v[0], v[1]); }, {a, bt});
        // With one operand constant, only the other side's rule runs.
        CHECK_GRADCHECK([b](const Vars& v) { return matmul(v[0], Var(b)); }, {a});
        CHECK_GRADCHECK([a](const Vars& v) { return matmul(Var(a), v[0]); }, {b});
        CHECK_GRADCHECK([b](const Vars& v) { return matmul_tn(v[0], Var(b)); }, {at});
        CHECK_GRADCHECK([at](const Vars& v) { return matmul_tn(Var(at), v[0]); }, {b});
        CHECK_GRADCHECK([bt](const Vars& v) { return matmul_nt(v[0], Var(bt)); }, {a});
        CHECK_GRADCHECK([a](const Vars& v) { return matmul_nt(Var(a), v[0]); }, {bt});
        // The same Var on both sides: both contributions add up.
        if (c.a == Shape{3, 4} && c.b == Shape{4, 2}) {
            CHECK_GRADCHECK([](const Vars& v) { return matmul_tn(v[0], v[0]); }, {a});
            CHECK_GRADCHECK([](const Vars& v) { return matmul_nt(v[0], v[0]); }, {a});
        }

        Tape tape;
        TapeScope scope(tape);
        const Var av = tape.variable(a), bv = tape.variable(b), atv = tape.variable(at), btv = tape.variable(bt);
        CHECK(equal(matmul(av, bv).value(), tapeflow::matmul(a, b)));
        CHECK(equal(matmul_tn(atv, bv).value(), tapeflow::matmul_tn(at, b)));
        CHECK(equal(matmul_nt(av, btv).value(), tapeflow::matmul_nt(a, bt)));
    }
}

TEST_CASE("a shape mismatch is reported by the product and records nothing") {
    Tape tape;
    TapeScope scope(tape);
    const Var a = tape.variable(Tensor::ones(Shape{3, 4}));
    const Var b = tape.variable(Tensor::ones(Shape{3, 2}));
    CHECK_THROWS_AS(matmul(a, b), std::invalid_argument);
    CHECK(tape.size() == 2);
}
