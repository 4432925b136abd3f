// The one loop that walks operands of different shapes under NumPy broadcasting.
// Elementwise ops and backward rules build on `map_unary` / `map_binary` / `map_ternary` so that
// their loops read as the formula they compute.
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

}  // namespace tapeflow::detail
