#include "nn/weight_norm.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::nn {

namespace {

void require_weight_norm_shapes(const Shape& v, const Shape& g) {
    if (v.rank() == 0 || !(g == Shape{v[0]}))
        throw std::invalid_argument(fmt::format(
            "weight_norm: needs v of rank ≥ 1 and g [v.shape()[0]], got v {} and g {}", v, g));
}

// [d0, d1, …] → [d0, 1, 1, …]: one entry per slice, broadcasting over the rest of the slice.
Shape slice_shape(const Shape& v) {
    Shape s = v;
    for (std::size_t i = 1; i < s.rank(); ++i) s[i] = 1;
    return s;
}

}  // namespace

Var weight_norm(const Var& v, const Var& g) {
    require_defined(v.value(), "weight_norm");
    require_defined(g.value(), "weight_norm");
    require_weight_norm_shapes(v.shape(), g.shape());
    const std::size_t units = v.shape()[0];
    const Var rows = reshape(v, Shape{units, v.numel() / units});
    const Var norms = sqrt(sum(square(rows), 1));
    return v * reshape(g / norms, slice_shape(v.shape()));
}

Tensor slice_norms(const Tensor& v) {
    require_defined(v, "slice_norms");
    if (v.rank() == 0) throw std::invalid_argument("slice_norms: needs a tensor of rank ≥ 1, got a scalar");
    const std::size_t units = v.shape()[0], per = units ? v.numel() / units : 0;
    Tensor norms(Shape{units});
    for (std::size_t o = 0; o < units; ++o) {
        double s = 0;
        for (std::size_t i = 0; i < per; ++i) s += v[o * per + i] * v[o * per + i];
        norms[o] = std::sqrt(s);
    }
    return norms;
}

}  // namespace tapeflow::nn
