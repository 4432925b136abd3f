// The one loop that walks operands of different shapes under NumPy broadcasting.
// Elementwise ops and backward rules build on `map_unary` / `map_binary` / `map_ternary` so that
// their loops read as the formula they compute.
//
// `for_each_broadcast` is the plain reference: one call per element with every operand's index.
// `for_each_broadcast_row` is the same walk a row (innermost axis) at a time, which lets the maps
// run their inner loop over plain pointers with a stride of 1 or 0 per operand — a loop the compiler
// vectorizes, as in the same-shape case. Tests hold the maps to `map_binary_reference` /
// `map_ternary_reference`, built on the per-element walk.
#pragma once

#include <array>
#include <string_view>

#include "tensor/shape.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::detail {

// Strides that make an operand of shape `in` index like one of shape `out`: an axis where `in`
// has size 1 (or is missing on the left) gets stride 0, so the same element is reused.
inline std::array<std::size_t, Shape::max_rank> broadcast_strides(const Shape& in, const Shape& out) {
    std::array<std::size_t, Shape::max_rank> strides{};
    const auto natural = contiguous_strides(in);
    const std::size_t offset = out.rank() - in.rank();
    for (std::size_t i = 0; i < in.rank(); ++i)
        strides[i + offset] = in[i] == 1 ? 0 : natural[i];
    return strides;
}

// Calls f(out_index, operand_indices) for every element of `out`, in row-major order.
template <std::size_t K, class F>
void for_each_broadcast(const Shape& out, const std::array<const Shape*, K>& operands, F&& f) {
    std::array<std::array<std::size_t, Shape::max_rank>, K> strides;
    for (std::size_t k = 0; k < K; ++k) strides[k] = broadcast_strides(*operands[k], out);
    const std::size_t total = out.numel();
    if (total == 0) return;
    const std::size_t rank = out.rank();
    if (rank == 0) {
        std::array<std::size_t, K> at{};
        f(std::size_t{0}, at);
        return;
    }
    // Odometer over the outer axes; the innermost axis is a strided inner loop.
    const std::size_t inner = out[rank - 1];
    std::array<std::size_t, Shape::max_rank> counter{};
    std::array<std::size_t, K> base{};
    for (std::size_t o = 0; o < total; o += inner) {
        std::array<std::size_t, K> at = base;
        for (std::size_t i = 0; i < inner; ++i) {
            f(o + i, at);
            for (std::size_t k = 0; k < K; ++k) at[k] += strides[k][rank - 1];
        }
        for (std::size_t axis = rank - 1; axis-- > 0;) {
            for (std::size_t k = 0; k < K; ++k) base[k] += strides[k][axis];
            if (++counter[axis] < out[axis]) break;
            for (std::size_t k = 0; k < K; ++k) base[k] -= strides[k][axis] * out[axis];
            counter[axis] = 0;
        }
    }
}

// The walk of `for_each_broadcast`, one row at a time: calls row(o, bases, n, strides) for each run of
// the innermost axis of `out`, i.e. the elements o … o + n − 1, where operand k's element for out
// element o + i is at bases[k] + i · strides[k] (each stride is 1, or 0 where the operand is broadcast
// along the innermost axis).
template <std::size_t K, class Row>
void for_each_broadcast_row(const Shape& out, const std::array<const Shape*, K>& operands, Row&& row) {
    std::array<std::array<std::size_t, Shape::max_rank>, K> strides;
    for (std::size_t k = 0; k < K; ++k) strides[k] = broadcast_strides(*operands[k], out);
    const std::size_t total = out.numel();
    if (total == 0) return;
    const std::size_t rank = out.rank();
    std::array<std::size_t, K> base{};
    if (rank == 0) {
        std::array<std::size_t, K> zero{};
        row(std::size_t{0}, base, std::size_t{1}, zero);
        return;
    }
    const std::size_t inner = out[rank - 1];
    std::array<std::size_t, K> inner_strides;
    for (std::size_t k = 0; k < K; ++k) inner_strides[k] = strides[k][rank - 1];
    std::array<std::size_t, Shape::max_rank> counter{};
    for (std::size_t o = 0; o < total; o += inner) {
        row(o, base, inner, inner_strides);
        for (std::size_t axis = rank - 1; axis-- > 0;) {
            for (std::size_t k = 0; k < K; ++k) base[k] += strides[k][axis];
            if (++counter[axis] < out[axis]) break;
            for (std::size_t k = 0; k < K; ++k) base[k] -= strides[k][axis] * out[axis];
            counter[axis] = 0;
        }
    }
}

template <class F>
Tensor map_unary(const Tensor& a, F&& f) {
    Tensor out(a.shape());
    const double* pa = a.data();
    double* po = out.data();
    for (std::size_t i = 0, n = a.numel(); i < n; ++i) po[i] = f(pa[i]);
    return out;
}

template <class F>
Tensor map_binary(const Tensor& a, const Tensor& b, F&& f, std::string_view op) {
    require_defined(a, op);
    require_defined(b, op);
    const double* pa = a.data();
    const double* pb = b.data();
    if (a.shape() == b.shape()) {  // the common case: one flat loop the compiler vectorizes
        Tensor out(a.shape());
        double* po = out.data();
        for (std::size_t i = 0, n = a.numel(); i < n; ++i) po[i] = f(pa[i], pb[i]);
        return out;
    }
    Tensor out(broadcast_shapes(a.shape(), b.shape(), op));
    double* po = out.data();
    for_each_broadcast_row<2>(out.shape(), {&a.shape(), &b.shape()},
                              [&](std::size_t o, const std::array<std::size_t, 2>& at, std::size_t n,
                                  const std::array<std::size_t, 2>& step) {
                                  double* ro = po + o;
                                  const double* ra = pa + at[0];
                                  const double* rb = pb + at[1];
                                  if (step[0] == 1 && step[1] == 1) {
                                      for (std::size_t i = 0; i < n; ++i) ro[i] = f(ra[i], rb[i]);
                                  } else if (step[0] == 1) {  // b broadcast along the row: [N, D] ∘ [N, 1]
                                      const double y = *rb;
                                      for (std::size_t i = 0; i < n; ++i) ro[i] = f(ra[i], y);
                                  } else if (step[1] == 1) {  // a broadcast along the row
                                      const double x = *ra;
                                      for (std::size_t i = 0; i < n; ++i) ro[i] = f(x, rb[i]);
                                  } else {
                                      const double value = f(*ra, *rb);
                                      for (std::size_t i = 0; i < n; ++i) ro[i] = value;
                                  }
                              });
    return out;
}

// map_binary by the per-element walk: the reference the tests hold map_binary to.
template <class F>
Tensor map_binary_reference(const Tensor& a, const Tensor& b, F&& f, std::string_view op) {
    require_defined(a, op);
    require_defined(b, op);
    Tensor out(broadcast_shapes(a.shape(), b.shape(), op));
    const double* pa = a.data();
    const double* pb = b.data();
    double* po = out.data();
    for_each_broadcast<2>(out.shape(), {&a.shape(), &b.shape()},
                          [&](std::size_t o, const std::array<std::size_t, 2>& at) {
                              po[o] = f(pa[at[0]], pb[at[1]]);
                          });
    return out;
}

template <class F>
Tensor map_ternary(const Tensor& a, const Tensor& b, const Tensor& c, F&& f, std::string_view op) {
    require_defined(a, op);
    require_defined(b, op);
    require_defined(c, op);
    const double* pa = a.data();
    const double* pb = b.data();
    const double* pc = c.data();
    if (a.shape() == b.shape() && a.shape() == c.shape()) {
        Tensor out(a.shape());
        double* po = out.data();
        for (std::size_t i = 0, n = a.numel(); i < n; ++i) po[i] = f(pa[i], pb[i], pc[i]);
        return out;
    }
    Tensor out(broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op));
    double* po = out.data();
    for_each_broadcast_row<3>(out.shape(), {&a.shape(), &b.shape(), &c.shape()},
                              [&](std::size_t o, const std::array<std::size_t, 3>& at, std::size_t n,
                                  const std::array<std::size_t, 3>& step) {
                                  double* ro = po + o;
                                  const double* ra = pa + at[0];
                                  const double* rb = pb + at[1];
                                  const double* rc = pc + at[2];
                                  for (std::size_t i = 0; i < n; ++i)
                                      ro[i] = f(ra[i * step[0]], rb[i * step[1]], rc[i * step[2]]);
                              });
    return out;
}

// map_ternary by the per-element walk: the reference the tests hold map_ternary to.
template <class F>
Tensor map_ternary_reference(const Tensor& a, const Tensor& b, const Tensor& c, F&& f, std::string_view op) {
    require_defined(a, op);
    require_defined(b, op);
    require_defined(c, op);
    Tensor out(broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op));
    const double* pa = a.data();
    const double* pb = b.data();
    const double* pc = c.data();
    double* po = out.data();
    for_each_broadcast<3>(out.shape(), {&a.shape(), &b.shape(), &c.shape()},
                          [&](std::size_t o, const std::array<std::size_t, 3>& at) {
                              po[o] = f(pa[at[0]], pb[at[1]], pc[at[2]]);
                          });
    return out;
}

// sum_to(a, shape) (tensor/reduce.hpp) by the per-element walk: the reference for its row-wise loop.
Tensor sum_to_reference(const Tensor& a, const Shape& shape);

}  // namespace tapeflow::detail
