#include "autograd/linalg.hpp"

#include "autograd/op.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/shape_ops.hpp"
#include "tensor/reduce.hpp"

namespace tapeflow {

namespace {
// A gradient computed per batch entry for an operand that was shared across the batch (2-D
// against 3-D) is the sum over the batch. Generic over Tensor and Var, as the rules below
// (autograd/op.hpp): the Var instance is the backward recorded under create_graph.
template <class T>
T fold_batch(const T& g, const Tensor& operand) {
    return g.shape().rank() == 3 && operand.rank() == 2 ? sum(g, 0) : g;
}
}  // namespace

// C = A·B:  dA = dC·Bᵀ,  dB = Aᵀ·dC.
Var matmul(const Var& a, const Var& b, CallSite site) {
    return record("matmul", tapeflow::matmul(a.value(), b.value()), {a, b}, [](auto& ctx) {
        const Tensor& A = ctx.input_value(0);
        const Tensor& B = ctx.input_value(1);
        if (ctx.needs_grad(0)) ctx.accumulate(0, fold_batch(matmul_nt(ctx.grad(), ctx.input(1)), A));
        if (ctx.needs_grad(1)) {
            // A shared weight under a batched input: fold the batch into the rows instead of summing
            // B products (one big product instead of many small ones).
            if (A.rank() == 3 && B.rank() == 2) {
                const Shape rows{A.shape()[0] * A.shape()[1], A.shape()[2]};
                const Shape grads{rows[0], ctx.grad().shape()[2]};
                ctx.accumulate(1, matmul_tn(reshape(ctx.input(0), rows), reshape(ctx.grad(), grads)));
            } else {
                ctx.accumulate(1, fold_batch(matmul_tn(ctx.input(0), ctx.grad()), B));
            }
        }
    },
                  [](const Forward& t) {
                      if (!t.has_tangent(1)) return tapeflow::matmul(t.tangent(0), t.input(1));
                      if (!t.has_tangent(0)) return tapeflow::matmul(t.input(0), t.tangent(1));
                      return tapeflow::matmul(t.tangent(0), t.input(1)) + tapeflow::matmul(t.input(0), t.tangent(1));
                  }, site);
}

// C = Aᵀ·B:  dA = B·dCᵀ,  dB = A·dC.
Var matmul_tn(const Var& a, const Var& b, CallSite site) {
    return record("matmul_tn", tapeflow::matmul_tn(a.value(), b.value()), {a, b}, [](auto& ctx) {
        if (ctx.needs_grad(0)) ctx.accumulate(0, fold_batch(matmul_nt(ctx.input(1), ctx.grad()), ctx.input_value(0)));
        if (ctx.needs_grad(1)) ctx.accumulate(1, fold_batch(matmul(ctx.input(0), ctx.grad()), ctx.input_value(1)));
    },
                  [](const Forward& t) {
                      if (!t.has_tangent(1)) return tapeflow::matmul_tn(t.tangent(0), t.input(1));
                      if (!t.has_tangent(0)) return tapeflow::matmul_tn(t.input(0), t.tangent(1));
                      return tapeflow::matmul_tn(t.tangent(0), t.input(1)) + tapeflow::matmul_tn(t.input(0), t.tangent(1));
                  }, site);
}

// C = A·Bᵀ:  dA = dC·B,  dB = dCᵀ·A.
Var matmul_nt(const Var& a, const Var& b, CallSite site) {
    return record("matmul_nt", tapeflow::matmul_nt(a.value(), b.value()), {a, b}, [](auto& ctx) {
        if (ctx.needs_grad(0)) ctx.accumulate(0, fold_batch(matmul(ctx.grad(), ctx.input(1)), ctx.input_value(0)));
        if (ctx.needs_grad(1)) ctx.accumulate(1, fold_batch(matmul_tn(ctx.grad(), ctx.input(0)), ctx.input_value(1)));
    },
                  [](const Forward& t) {
                      if (!t.has_tangent(1)) return tapeflow::matmul_nt(t.tangent(0), t.input(1));
                      if (!t.has_tangent(0)) return tapeflow::matmul_nt(t.input(0), t.tangent(1));
                      return tapeflow::matmul_nt(t.tangent(0), t.input(1)) + tapeflow::matmul_nt(t.input(0), t.tangent(1));
                  }, site);
}

}  // namespace tapeflow
