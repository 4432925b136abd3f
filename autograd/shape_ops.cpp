#include "autograd/shape_ops.hpp"

#include <algorithm>
#include <stdexcept>

#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow {

namespace {

const Shape& input_shape(const Tape& t, const Node& n, int k = 0) { return t.value(n.inputs[k]).shape(); }

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

}  // namespace

// Reshapes move no element: the gradient is reshaped back.
Var reshape(const Var& a, const Shape& shape, CallSite site) {
    return record("reshape", a.value().reshape(shape), {a},
                  [](Tape& t, const Node& n) { t.accumulate(n.inputs[0], n.grad.reshape(input_shape(t, n))); }, {}, site);
}
Var flatten(const Var& a, CallSite site) { return reshape(a, Shape{a.numel()}, site); }
Var unsqueeze(const Var& a, int axis, CallSite site) { return reshape(a, tapeflow::unsqueeze(a.value(), axis).shape(), site); }
Var squeeze(const Var& a, int axis, CallSite site) { return reshape(a, tapeflow::squeeze(a.value(), axis).shape(), site); }

// The gradient of a transpose is the transposed gradient.
Var transpose(const Var& a, CallSite site) {
    return record("transpose", tapeflow::transpose(a.value()), {a},
                  [](Tape& t, const Node& n) { t.accumulate(n.inputs[0], tapeflow::transpose(n.grad)); }, {}, site);
}

// The gradient of a permutation of axes is permuted back by the inverse permutation.
Var permute(const Var& a, const std::vector<std::size_t>& axes, CallSite site) {
    return record("permute", tapeflow::permute(a.value(), axes), {a}, [](Tape& t, const Node& n) {
        const std::vector<std::size_t> axes = unpack_indices(n.attributes.saved);
        std::vector<std::size_t> inverse(axes.size());
        for (std::size_t i = 0; i < axes.size(); ++i) inverse[axes[i]] = i;
        t.accumulate(n.inputs[0], tapeflow::permute(n.grad, inverse));
    }, {.saved = pack_indices(axes)}, site);
}

// The gradient of a slice is the upstream gradient placed back into a zero tensor of the input's shape.
Var narrow(const Var& a, int axis, std::size_t start, std::size_t length, CallSite site) {
    return record("narrow", tapeflow::narrow(a.value(), axis, start, length), {a}, [](Tape& t, const Node& n) {
        const Shape& in = input_shape(t, n);
        const std::size_t ax = normalize_axis(n.attributes.axis, in.rank(), "narrow");
        const std::size_t start = static_cast<std::size_t>(n.attributes.scalar);
        const Around v = around(in, ax);
        const std::size_t len = n.grad.shape()[ax];
        Tensor g = Tensor::zeros(in);
        for (std::size_t o = 0; o < v.outer; ++o)
            std::copy_n(n.grad.data() + o * len * v.inner, len * v.inner, g.data() + (o * v.n + start) * v.inner);
        t.accumulate(n.inputs[0], std::move(g));
    }, {.scalar = static_cast<double>(start), .axis = axis}, site);
}

// Concatenation of two parts: each part's gradient is its slice of the upstream gradient.
// More parts are joined pairwise from the left.
Var concat(const std::vector<Var>& parts, int axis, CallSite site) {
    if (parts.empty()) throw std::invalid_argument("concat: needs at least one tensor");
    Var joined = parts.front();
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const Var& next = parts[i];
        joined = record("concat", tapeflow::concat(std::vector<Tensor>{joined.value(), next.value()}, axis), {joined, next},
                        [](Tape& t, const Node& n) {
                            const int axis = n.attributes.axis;
                            const std::size_t first = input_shape(t, n, 0)[normalize_axis(axis, n.grad.rank(), "concat")];
                            const std::size_t second = input_shape(t, n, 1)[normalize_axis(axis, n.grad.rank(), "concat")];
                            t.accumulate(n.inputs[0], tapeflow::narrow(n.grad, axis, 0, first));
                            t.accumulate(n.inputs[1], tapeflow::narrow(n.grad, axis, first, second));
                        }, {.axis = axis}, site);
    }
    return joined;
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
    return record("index_select", tapeflow::index_select(a.value(), axis, indices), {a}, [](Tape& t, const Node& n) {
        const Shape& in = input_shape(t, n);
        const std::size_t ax = normalize_axis(n.attributes.axis, in.rank(), "index_select");
        const Around v = around(in, ax);
        const Tensor& idx = n.attributes.saved;
        const std::size_t k = idx.numel();
        Tensor g = Tensor::zeros(in);
        for (std::size_t o = 0; o < v.outer; ++o)
            for (std::size_t j = 0; j < k; ++j) {
                const double* src = n.grad.data() + (o * k + j) * v.inner;
                double* dst = g.data() + (o * v.n + static_cast<std::size_t>(idx[j])) * v.inner;
                for (std::size_t i = 0; i < v.inner; ++i) dst[i] += src[i];
            }
        t.accumulate(n.inputs[0], std::move(g));
    }, {.saved = pack_indices(indices), .axis = axis}, site);
}

// Each picked entry sends its gradient back where it came from; an entry picked twice gets both.
Var take_along_axis(const Var& a, const Tensor& indices, int axis, CallSite site) {
    return record("take_along_axis", tapeflow::take_along_axis(a.value(), indices, axis), {a}, [](Tape& t, const Node& n) {
        const Shape& in = input_shape(t, n);
        const Tensor& idx = n.attributes.saved;
        const Around v = around(in, normalize_axis(n.attributes.axis, in.rank(), "take_along_axis"));
        const std::size_t k = idx.shape()[normalize_axis(n.attributes.axis, in.rank(), "take_along_axis")];
        Tensor g = Tensor::zeros(in);
        for (std::size_t o = 0; o < v.outer; ++o)
            for (std::size_t j = 0; j < k; ++j)
                for (std::size_t i = 0; i < v.inner; ++i) {
                    const std::size_t at = (o * k + j) * v.inner + i;
                    g[(o * v.n + static_cast<std::size_t>(idx[at])) * v.inner + i] += n.grad[at];
                }
        t.accumulate(n.inputs[0], std::move(g));
    }, {.saved = indices, .axis = axis}, site);
}

// Broadcasting copies elements: their gradients are summed back (accumulate's sum_to does it).
Var broadcast_to(const Var& a, const Shape& shape, CallSite site) {
    return record("broadcast_to", tapeflow::broadcast_to(a.value(), shape), {a},
                  [](Tape& t, const Node& n) { t.accumulate(n.inputs[0], n.grad); }, {}, site);
}

}  // namespace tapeflow
