#include "tensor/shape_ops.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/broadcast.hpp"

namespace tapeflow {

namespace {

// Splits a shape around `axis` into [outer, n, inner], the view that narrow, concat and
// index_select all copy through.
struct Around {
    std::size_t axis, outer = 1, n, inner = 1;
};

Around around(const Shape& s, int axis, std::string_view op) {
    Around v{normalize_axis(axis, s.rank(), op), 1, 0, 1};
    for (std::size_t i = 0; i < s.rank(); ++i) {
        if (i < v.axis) v.outer *= s[i];
        if (i > v.axis) v.inner *= s[i];
    }
    v.n = s[v.axis];
    return v;
}

// Copies rows [outer, len, inner] from src (axis length src_n, starting at src_start) to dst
// (axis length dst_n, starting at dst_start).
void copy_block(const double* src, std::size_t src_n, std::size_t src_start, double* dst, std::size_t dst_n,
                std::size_t dst_start, std::size_t outer, std::size_t len, std::size_t inner) {
    for (std::size_t o = 0; o < outer; ++o)
        std::copy_n(src + (o * src_n + src_start) * inner, len * inner, dst + (o * dst_n + dst_start) * inner);
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) { return a.reshape(shape); }

Tensor flatten(const Tensor& a) {
    require_defined(a, "flatten");
    return a.reshape(Shape{a.numel()});
}

Tensor unsqueeze(const Tensor& a, int axis) {
    require_defined(a, "unsqueeze");
    // Axis ranges over rank+1 positions: −1 appends at the end.
    const std::size_t ax = normalize_axis(axis, a.rank() + 1, "unsqueeze");
    Shape s;
    for (std::size_t i = 0; i <= a.rank(); ++i) {
        if (i == ax) s.push_back(1);
        if (i < a.rank()) s.push_back(a.shape()[i]);
    }
    return a.reshape(s);
}

Tensor squeeze(const Tensor& a, int axis) {
    require_defined(a, "squeeze");
    const std::size_t ax = normalize_axis(axis, a.rank(), "squeeze");
    if (a.shape()[ax] != 1)
        throw std::invalid_argument(
            fmt::format("squeeze: axis {} of shape {} has size {}, not 1", axis, a.shape(), a.shape()[ax]));
    Shape s;
    for (std::size_t i = 0; i < a.rank(); ++i)
        if (i != ax) s.push_back(a.shape()[i]);
    return a.reshape(s);
}

Tensor transpose(const Tensor& a) {
    require_defined(a, "transpose");
    if (a.rank() < 2)
        throw std::invalid_argument(fmt::format("transpose: needs rank ≥ 2, got shape {}", a.shape()));
    std::vector<std::size_t> axes(a.rank());
    for (std::size_t i = 0; i < a.rank(); ++i) axes[i] = i;
    std::swap(axes[a.rank() - 1], axes[a.rank() - 2]);
    return permute(a, axes);
}

Tensor permute(const Tensor& a, const std::vector<std::size_t>& axes) {
    require_defined(a, "permute");
    if (axes.size() != a.rank())
        throw std::invalid_argument(
            fmt::format("permute: {} axes given for a tensor of shape {}", axes.size(), a.shape()));
    std::vector<bool> seen(a.rank(), false);
    for (std::size_t ax : axes) {
        if (ax >= a.rank() || seen[ax])
            throw std::invalid_argument(fmt::format("permute: [{}] is not a permutation of the axes of {}",
                                                    fmt::join(axes, ", "), a.shape()));
        seen[ax] = true;
    }
    Shape out_shape;
    for (std::size_t ax : axes) out_shape.push_back(a.shape()[ax]);
    // Gather: walk the output in order; its element comes from the input at permuted strides.
    const auto in_strides = contiguous_strides(a.shape());
    std::array<std::size_t, Shape::max_rank> gather_strides{};
    for (std::size_t i = 0; i < axes.size(); ++i) gather_strides[i] = in_strides[axes[i]];
    Tensor out(out_shape);
    std::array<std::size_t, Shape::max_rank> counter{};
    std::size_t src = 0;
    const std::size_t rank = a.rank();
    for (std::size_t o = 0; o < out.numel(); ++o) {
        out[o] = a[src];
        for (std::size_t axis = rank; axis-- > 0;) {
            src += gather_strides[axis];
            if (++counter[axis] < out_shape[axis]) break;
            src -= gather_strides[axis] * out_shape[axis];
            counter[axis] = 0;
        }
    }
    return out;
}

Tensor narrow(const Tensor& a, int axis, std::size_t start, std::size_t length) {
    require_defined(a, "narrow");
    const Around v = around(a.shape(), axis, "narrow");
    if (start > v.n || length > v.n - start)
        throw std::invalid_argument(fmt::format("narrow: [{}, {}) is out of range for axis {} of shape {}",
                                                start, start + length, axis, a.shape()));
    Shape s = a.shape();
    s[v.axis] = length;
    Tensor out(s);
    copy_block(a.data(), v.n, start, out.data(), length, 0, v.outer, length, v.inner);
    return out;
}

Tensor concat(const std::vector<Tensor>& parts, int axis) {
    if (parts.empty()) throw std::invalid_argument("concat: needs at least one tensor");
    for (const Tensor& p : parts) require_defined(p, "concat");
    const Shape& first = parts.front().shape();
    const Around v = around(first, axis, "concat");
    std::size_t total = 0;
    for (const Tensor& p : parts) {
        bool same = p.rank() == first.rank();
        for (std::size_t i = 0; same && i < first.rank(); ++i) same = i == v.axis || p.shape()[i] == first[i];
        if (!same)
            throw std::invalid_argument(fmt::format(
                "concat: shapes {} and {} differ outside axis {}", first, p.shape(), axis));
        total += p.shape()[v.axis];
    }
    Shape s = first;
    s[v.axis] = total;
    Tensor out(s);
    std::size_t offset = 0;
    for (const Tensor& p : parts) {
        const std::size_t len = p.shape()[v.axis];
        copy_block(p.data(), len, 0, out.data(), total, offset, v.outer, len, v.inner);
        offset += len;
    }
    return out;
}

std::vector<Tensor> split(const Tensor& a, int axis, const std::vector<std::size_t>& sizes) {
    require_defined(a, "split");
    const Around v = around(a.shape(), axis, "split");
    std::size_t total = 0;
    for (std::size_t s : sizes) total += s;
    if (total != v.n)
        throw std::invalid_argument(fmt::format("split: sizes [{}] add up to {}, but axis {} of {} has {}",
                                                fmt::join(sizes, ", "), total, axis, a.shape(), v.n));
    std::vector<Tensor> pieces;
    std::size_t start = 0;
    for (std::size_t s : sizes) {
        pieces.push_back(narrow(a, axis, start, s));
        start += s;
    }
    return pieces;
}

std::vector<Tensor> chunk(const Tensor& a, std::size_t n, int axis) {
    require_defined(a, "chunk");
    if (n == 0) throw std::invalid_argument("chunk: the number of chunks must be positive");
    const std::size_t len = a.shape()[normalize_axis(axis, a.rank(), "chunk")];
    const std::size_t piece = (len + n - 1) / n;
    std::vector<std::size_t> sizes;
    for (std::size_t start = 0; start < len; start += piece) sizes.push_back(std::min(piece, len - start));
    return split(a, axis, sizes);
}

Tensor index_select(const Tensor& a, int axis, const std::vector<std::size_t>& indices) {
    require_defined(a, "index_select");
    const Around v = around(a.shape(), axis, "index_select");
    for (std::size_t i : indices)
        if (i >= v.n)
            throw std::invalid_argument(
                fmt::format("index_select: index {} is out of range for axis {} of shape {}", i, axis, a.shape()));
    Shape s = a.shape();
    s[v.axis] = indices.size();
    Tensor out(s);
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t k = 0; k < indices.size(); ++k)
            std::copy_n(a.data() + (o * v.n + indices[k]) * v.inner, v.inner,
                        out.data() + (o * indices.size() + k) * v.inner);
    return out;
}

Tensor take_along_axis(const Tensor& a, const Tensor& indices, int axis) {
    require_defined(a, "take_along_axis");
    require_defined(indices, "take_along_axis");
    const Around v = around(a.shape(), axis, "take_along_axis");
    bool fits = indices.rank() == a.rank();
    for (std::size_t i = 0; fits && i < a.rank(); ++i) fits = i == v.axis || indices.shape()[i] == a.shape()[i];
    if (!fits)
        throw std::invalid_argument(fmt::format(
            "take_along_axis: indices of shape {} do not fit a tensor of shape {} along axis {} (same rank, "
            "same sizes on every other axis)",
            indices.shape(), a.shape(), axis));
    const std::size_t k = indices.shape()[v.axis];
    Tensor out(indices.shape());
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t i = 0; i < v.inner; ++i) {
                const std::size_t at = (o * k + j) * v.inner + i;
                const double index = indices[at];
                if (!(index >= 0 && index < static_cast<double>(v.n) && index == std::floor(index)))
                    throw std::invalid_argument(fmt::format(
                        "take_along_axis: index {} (element {} of the indices) is not a whole number in [0, {}) for "
                        "axis {} of shape {}",
                        index, at, v.n, axis, a.shape()));
                out[at] = a[(o * v.n + static_cast<std::size_t>(index)) * v.inner + i];
            }
    return out;
}

Tensor broadcast_to(const Tensor& a, const Shape& shape) {
    require_defined(a, "broadcast_to");
    if (!(broadcast_shapes(a.shape(), shape, "broadcast_to") == shape))
        throw std::invalid_argument(
            fmt::format("broadcast_to: shape {} cannot be broadcast to {}", a.shape(), shape));
    Tensor out(shape);
    double* po = out.data();
    const double* pa = a.data();
    detail::for_each_broadcast<1>(shape, {&a.shape()},
                                  [&](std::size_t o, const std::array<std::size_t, 1>& at) { po[o] = pa[at[0]]; });
    return out;
}

}  // namespace tapeflow
