#include "tensor/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/storage.hpp"

namespace tapeflow {

Tensor::Tensor(const Shape& shape)
    : shape_(shape), numel_(shape.numel()),
      // Storage for n ≥ 1 elements so that a defined tensor always has a valid data() pointer.
      storage_(allocate_storage(std::max<std::size_t>(numel_, 1), &shape)) {}

Tensor::Tensor(const Shape& shape, std::vector<double> values) : Tensor(shape) {
    if (values.size() != numel_)
        throw std::invalid_argument(fmt::format("Tensor: shape {} needs {} values, got {}", shape,
                                                numel_, values.size()));
    std::copy(values.begin(), values.end(), data());
}

Tensor::Tensor(std::initializer_list<double> values) : Tensor(Shape{values.size()}) {
    std::copy(values.begin(), values.end(), data());
}

Tensor::Tensor(std::initializer_list<std::initializer_list<double>> rows)
    : Tensor(Shape{rows.size(), rows.size() ? rows.begin()->size() : 0}) {
    double* out = data();
    for (const auto& row : rows) {
        if (row.size() != shape_[1])
            throw std::invalid_argument(fmt::format(
                "Tensor: ragged nested list (a row of {} after rows of {})", row.size(), shape_[1]));
        out = std::copy(row.begin(), row.end(), out);
    }
}

Tensor::Tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> blocks)
    : Tensor(Shape{blocks.size(), blocks.size() ? blocks.begin()->size() : 0,
                   blocks.size() && blocks.begin()->size() ? blocks.begin()->begin()->size() : 0}) {
    double* out = data();
    for (const auto& block : blocks) {
        if (block.size() != shape_[1])
            throw std::invalid_argument("Tensor: ragged nested list (blocks of different heights)");
        for (const auto& row : block) {
            if (row.size() != shape_[2])
                throw std::invalid_argument("Tensor: ragged nested list (rows of different lengths)");
            out = std::copy(row.begin(), row.end(), out);
        }
    }
}

Tensor Tensor::scalar(double value) { return full(Shape{}, value); }
Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.0); }

Tensor Tensor::full(const Shape& shape, double value) {
    Tensor t(shape);
    t.fill(value);
    return t;
}

Tensor Tensor::arange(double start, double stop, double step) {
    if (step == 0 || !std::isfinite(start) || !std::isfinite(stop) || !std::isfinite(step))
        throw std::invalid_argument(
            fmt::format("arange: needs finite start, stop and a non-zero step (got {}, {}, {})",
                        start, stop, step));
    const double count = std::ceil((stop - start) / step);
    Tensor t(Shape{count > 0 ? static_cast<std::size_t>(count) : 0});
    for (std::size_t i = 0; i < t.numel(); ++i) t[i] = start + static_cast<double>(i) * step;
    return t;
}

Tensor Tensor::linspace(double a, double b, std::size_t n) {
    Tensor t(Shape{n});
    // a + i·(b−a)/(n−1), with the last point set exactly to b so ranges close without rounding.
    for (std::size_t i = 0; i < n; ++i)
        t[i] = n == 1 ? a : a + (b - a) * static_cast<double>(i) / static_cast<double>(n - 1);
    if (n > 1) t[n - 1] = b;
    return t;
}

std::size_t Tensor::size(int axis) const { return shape_[normalize_axis(axis, rank(), "size")]; }

double Tensor::item() const {
    require_defined(*this, "item");
    if (numel_ != 1)
        throw std::invalid_argument(
            fmt::format("item: needs a tensor with one element, got shape {}", shape_));
    return storage_[0];
}

namespace {
std::size_t flat_index(const Shape& shape, std::initializer_list<std::size_t> index) {
    if (index.size() != shape.rank())
        throw std::invalid_argument(fmt::format("at: index of {} coordinates for a tensor of shape {}",
                                                index.size(), shape));
    std::size_t flat = 0, axis = 0;
    for (std::size_t i : index) {
        if (i >= shape[axis])
            throw std::invalid_argument(fmt::format("at: index {} is out of range for axis {} of shape {}",
                                                    i, axis, shape));
        flat = flat * shape[axis] + i;
        ++axis;
    }
    return flat;
}
}  // namespace

Tensor::Element Tensor::at(std::initializer_list<std::size_t> index) {
    require_defined(*this, "at");
    return {*this, storage_.get() + flat_index(shape_, index)};
}

double Tensor::at(std::initializer_list<std::size_t> index) const {
    require_defined(*this, "at");
    return storage_[flat_index(shape_, index)];
}

Tensor Tensor::clone() const {
    if (!defined()) return {};
    Tensor t(shape_);
    std::copy(data(), data() + numel_, t.data());
    return t;
}

void Tensor::fill(double value) {
    require_defined(*this, "fill");
    std::fill(data(), data() + numel_, value);
}

Tensor Tensor::reshape(const Shape& shape) const {
    require_defined(*this, "reshape");
    if (shape.numel() != numel_)
        throw std::invalid_argument(fmt::format("reshape: cannot view shape {} ({} elements) as {} ({})",
                                                shape_, numel_, shape, shape.numel()));
    Tensor t = *this;
    t.shape_ = shape;
    return t;
}

Tensor& Tensor::operator+=(const Tensor& other) {
    require_defined(*this, "operator+=");
    add_into(*this, other);
    return *this;
}

Tensor& Tensor::operator-=(const Tensor& other) {
    require_defined(*this, "operator-=");
    add_into(*this, other, -1.0);
    return *this;
}

Tensor& Tensor::operator*=(double s) {
    require_defined(*this, "operator*=");
    for (double& v : span()) v *= s;
    return *this;
}

void Tensor::refuse_write() const {
    throw std::logic_error(fmt::format(
        "Tensor {}: write into a read-only storage (the gradient a backward rule receives is shared with "
        "other nodes' gradients); clone() it and modify the copy",
        shape_));
}

void require_defined(const Tensor& t, std::string_view op) {
    if (!t.defined()) throw std::invalid_argument(fmt::format("{}: the tensor is undefined (empty handle)", op));
}

bool equal(const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    require_defined(a, "max_abs_diff");
    require_defined(b, "max_abs_diff");
    if (!(a.shape() == b.shape()))
        throw std::invalid_argument(
            fmt::format("max_abs_diff: shapes {} and {} differ", a.shape(), b.shape()));
    double worst = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) {
        const double d = std::abs(a[i] - b[i]);
        if (std::isnan(d)) return d;  // NaN is the worst difference; a later finite one must not hide it
        worst = std::max(worst, d);
    }
    return worst;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
    if (!a.defined() || !b.defined() || !(a.shape() == b.shape())) return false;
    for (std::size_t i = 0; i < a.numel(); ++i) {
        // Equal infinities are close; any other infinity is not, although inf ≤ rtol·inf would say so.
        if (a[i] == b[i]) continue;
        const bool finite = std::isfinite(a[i]) && std::isfinite(b[i]);
        if (!finite || !(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) return false;
    }
    return true;
}

}  // namespace tapeflow
