#include "autograd/shape_ops.hpp"

#include <algorithm>
#include <stdexcept>

#include "autograd/op.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow {

namespace {

// Integer lists (axes, indices) ride along in the node as a tensor of doubles: exact below 2⁵³,
// and free of per-step heap allocation beyond the tensor itself.
Tensor pack_indices(const std::vector<std::size_t>& v) {
    Tensor t(Shape{v.size()});
    for (std::size_t i = 0; i < v.size(); ++i) t[i] = static_cast<double>(v[i]);
    return t;
}
std::vector<std::size_t> unpack_indices(const Tensor& t) {
    std::vector<std::size_t> v(t.numel());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::size_t>(t[i]);
    return v;
}

// Viewing `shape` around `axis` as [outer, n, inner].
struct Around {
    std::size_t outer = 1, n = 0, inner = 1;
};
Around around(const Shape& s, std::size_t axis) {
    Around v;
    for (std::size_t i = 0; i < s.rank(); ++i) {
        if (i < axis) v.outer *= s[i];
        if (i > axis) v.inner *= s[i];
    }
    v.n = s[axis];
    return v;
}

// The scatters below are the transposes of narrow, index_select and take_along_axis: each backward
// rule is generic over Tensor and Var (autograd/op.hpp), and each scatter has a recorded twin whose own
// backward is the gather again, so a gradient through them can be differentiated to any order.

// g placed into a zero tensor of shape `in` at [start, start + len) along the axis.
Tensor embed(const Tensor& grad, const Shape& in, int axis, std::size_t start) {
    const std::size_t ax = normalize_axis(axis, in.rank(), "narrow");
    const Around v = around(in, ax);
    const std::size_t len = grad.shape()[ax];
    Tensor g = Tensor::zeros(in);
    for (std::size_t o = 0; o < v.outer; ++o)
        std::copy_n(grad.data() + o * len * v.inner, len * v.inner, g.data() + (o * v.n + start) * v.inner);
    return g;
}
Var embed(const Var& grad, const Shape& in, int axis, std::size_t start) {
    const std::size_t len = grad.shape()[normalize_axis(axis, in.rank(), "narrow")];
    return record("embed", embed(grad.value(), in, axis, start), {grad},
                  [axis, start, len](auto& ctx) { ctx.accumulate(0, narrow(ctx.grad(), axis, start, len)); },
                  [&in, axis, start](const Forward& t) { return embed(t.tangent(0), in, axis, start); });
}

// Σ of the rows of `grad` into the rows of a zero tensor of shape `in` they were selected from.
Tensor index_add(const Tensor& grad, const Shape& in, int axis, const Tensor& idx) {
    const std::size_t ax = normalize_axis(axis, in.rank(), "index_select");
    const Around v = around(in, ax);
    const std::size_t k = idx.numel();
    Tensor g = Tensor::zeros(in);
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t j = 0; j < k; ++j) {
            const double* src = grad.data() + (o * k + j) * v.inner;
            double* dst = g.data() + (o * v.n + static_cast<std::size_t>(idx[j])) * v.inner;
            for (std::size_t i = 0; i < v.inner; ++i) dst[i] += src[i];
        }
    return g;
}
Var index_add(const Var& grad, const Shape& in, int axis, const Tensor& idx) {
    return record("index_add", index_add(grad.value(), in, axis, idx), {grad},
                  [axis, idx](auto& ctx) { ctx.accumulate(0, index_select(ctx.grad(), axis, unpack_indices(idx))); },
                  [&in, axis, &idx](const Forward& t) { return index_add(t.tangent(0), in, axis, idx); });
}

// Each entry of `grad` added to the entry of a zero tensor of shape `in` it was taken from.
Tensor scatter_along_axis(const Tensor& grad, const Shape& in, const Tensor& idx, int axis) {
    const std::size_t ax = normalize_axis(axis, in.rank(), "take_along_axis");
    const Around v = around(in, ax);
    const std::size_t k = idx.shape()[ax];
    Tensor g = Tensor::zeros(in);
    for (std::size_t o = 0; o < v.outer; ++o)
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t i = 0; i < v.inner; ++i) {
                const std::size_t at = (o * k + j) * v.inner + i;
                g[(o * v.n + static_cast<std::size_t>(idx[at])) * v.inner + i] += grad[at];
            }
    return g;
}
Var scatter_along_axis(const Var& grad, const Shape& in, const Tensor& idx, int axis) {
    return record("scatter_along_axis", scatter_along_axis(grad.value(), in, idx, axis), {grad},
                  [axis, idx](auto& ctx) { ctx.accumulate(0, take_along_axis(ctx.grad(), idx, axis)); },
                  [&in, &idx, axis](const Forward& t) { return scatter_along_axis(t.tangent(0), in, idx, axis); });
}

}  // namespace

// Reshapes move no element: the gradient is reshaped back.
Var reshape(const Var& a, const Shape& shape, CallSite site) {
    return record("reshape", a.value().reshape(shape), {a},
                  [](auto& ctx) { ctx.accumulate(0, reshape(ctx.grad(), ctx.input_shape(0))); },
                  [&shape](const Forward& t) { return tapeflow::reshape(t.tangent(0), shape); }, site);
}
Var flatten(const Var& a, CallSite site) { return reshape(a, Shape{a.numel()}, site); }
Var unsqueeze(const Var& a, int axis, CallSite site) { return reshape(a, tapeflow::unsqueeze(a.value(), axis).shape(), site); }
Var squeeze(const Var& a, int axis, CallSite site) { return reshape(a, tapeflow::squeeze(a.value(), axis).shape(), site); }

// The gradient of a transpose is the transposed gradient.
Var transpose(const Var& a, CallSite site) {
    return record("transpose", tapeflow::transpose(a.value()), {a},
                  [](auto& ctx) { ctx.accumulate(0, transpose(ctx.grad())); },
                  [](const Forward& t) { return tapeflow::transpose(t.tangent(0)); }, site);
}

// The gradient of a permutation of axes is permuted back by the inverse permutation.
Var permute(const Var& a, const std::vector<std::size_t>& axes, CallSite site) {
    return record("permute", tapeflow::permute(a.value(), axes), {a}, [saved = pack_indices(axes)](auto& ctx) {
        const std::vector<std::size_t> axes = unpack_indices(saved);
        std::vector<std::size_t> inverse(axes.size());
        for (std::size_t i = 0; i < axes.size(); ++i) inverse[axes[i]] = i;
        ctx.accumulate(0, permute(ctx.grad(), inverse));
    },
                  [&axes](const Forward& t) { return tapeflow::permute(t.tangent(0), axes); }, site);
}

// The gradient of a slice is the upstream gradient placed back into a zero tensor of the input's shape.
Var narrow(const Var& a, int axis, std::size_t start, std::size_t length, CallSite site) {
    return record("narrow", tapeflow::narrow(a.value(), axis, start, length), {a}, [axis, start](auto& ctx) {
        ctx.accumulate(0, embed(ctx.grad(), ctx.input_shape(0), axis, start));
    },
                  [axis, start, length](const Forward& t) { return tapeflow::narrow(t.tangent(0), axis, start, length); }, site);
}

// Concatenation, one node for all k parts: each part's gradient is its slice of the upstream gradient
// (one copy per part, where joining pairwise copied O(k²) elements).
Var concat(const std::vector<Var>& parts, int axis, CallSite site) {
    if (parts.empty()) throw std::invalid_argument("concat: needs at least one tensor");
    std::vector<Tensor> values;
    values.reserve(parts.size());
    for (const Var& p : parts) values.push_back(p.value());
    return record("concat", tapeflow::concat(values, axis), parts, [axis](auto& ctx) {
        const std::size_t ax = normalize_axis(axis, ctx.grad().shape().rank(), "concat");
        std::size_t start = 0;
        for (std::size_t k = 0; k < ctx.n_inputs(); ++k) {
            const std::size_t length = ctx.input_shape(k)[ax];
            if (ctx.needs_grad(k)) ctx.accumulate(k, narrow(ctx.grad(), axis, start, length));
            start += length;
        }
    },
                  [axis](const Forward& t) {
                      std::vector<Tensor> tangents;
                      for (std::size_t k = 0; k < t.n_inputs(); ++k) tangents.push_back(t.tangent(k));
                      return tapeflow::concat(tangents, axis);
                  }, site);
}

std::vector<Var> split(const Var& a, int axis, const std::vector<std::size_t>& sizes, CallSite site) {
    tapeflow::split(a.value(), axis, sizes);  // validates the sizes with the tensor op's message
    std::vector<Var> pieces;
    std::size_t start = 0;
    for (std::size_t s : sizes) {
        pieces.push_back(narrow(a, axis, start, s, site));
        start += s;
    }
    return pieces;
}

std::vector<Var> chunk(const Var& a, std::size_t n, int axis, CallSite site) {
    std::vector<std::size_t> sizes;
    for (const Tensor& piece : tapeflow::chunk(a.value(), n, axis)) sizes.push_back(piece.size(axis));
    return split(a, axis, sizes, site);
}

// Each selected entry sends its gradient back to its source index; an index picked twice gets both.
Var index_select(const Var& a, int axis, const std::vector<std::size_t>& indices, CallSite site) {
    return record("index_select", tapeflow::index_select(a.value(), axis, indices), {a},
                  [axis, saved = pack_indices(indices)](auto& ctx) {
                      ctx.accumulate(0, index_add(ctx.grad(), ctx.input_shape(0), axis, saved));
                  },
                  [axis, &indices](const Forward& t) { return tapeflow::index_select(t.tangent(0), axis, indices); }, site);
}

// Each picked entry sends its gradient back where it came from; an entry picked twice gets both.
Var take_along_axis(const Var& a, const Tensor& indices, int axis, CallSite site) {
    return record("take_along_axis", tapeflow::take_along_axis(a.value(), indices, axis), {a},
                  [axis, idx = indices](auto& ctx) {
                      ctx.accumulate(0, scatter_along_axis(ctx.grad(), ctx.input_shape(0), idx, axis));
                  },
                  [axis, &indices](const Forward& t) { return tapeflow::take_along_axis(t.tangent(0), indices, axis); }, site);
}

// Broadcasting copies elements: their gradients are summed back (accumulate's sum_to does it).
Var broadcast_to(const Var& a, const Shape& shape, CallSite site) {
    return record("broadcast_to", tapeflow::broadcast_to(a.value(), shape), {a},
                  [](auto& ctx) { ctx.accumulate(0, ctx.grad()); },
                  [&shape](const Forward& t) { return tapeflow::broadcast_to(t.tangent(0), shape); }, site);
}

}  // namespace tapeflow
