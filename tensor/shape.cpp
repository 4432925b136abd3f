#include "tensor/shape.hpp"

#include <cstdint>
#include <stdexcept>

namespace tapeflow {

Shape::Shape(std::initializer_list<std::size_t> dims)
    : Shape(std::span<const std::size_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::size_t> dims) {
    if (dims.size() > max_rank)
        throw std::invalid_argument(
            fmt::format("Shape: rank {} exceeds the maximum rank {}", dims.size(), max_rank));
    for (std::size_t d : dims) dims_[rank_++] = d;
    (void)numel();
}

std::size_t Shape::numel() const {
    std::size_t n = 1;
    bool overflow = false;
    for (std::size_t d : *this) {
        if (d == 0) return 0;
        overflow |= __builtin_mul_overflow(n, d, &n);
    }
    if (overflow)
        throw std::invalid_argument(fmt::format(
            "Shape {}: the element count (the product of the dims) overflows std::size_t (more than {})", str(),
            SIZE_MAX));
    return n;
}

void Shape::push_back(std::size_t dim) {
    if (rank_ == max_rank)
        throw std::invalid_argument(fmt::format("Shape: cannot grow {} beyond rank {}", str(), max_rank));
    dims_[rank_++] = dim;
    try {
        (void)numel();
    } catch (...) {
        --rank_;  // the shape stays as it was
        throw;
    }
}

bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
        if (a.dims_[i] != b.dims_[i]) return false;
    return true;
}

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(begin(), end(), ", ")); }

std::size_t normalize_axis(int axis, std::size_t rank, std::string_view op) {
    const auto r = static_cast<long>(rank);
    const long a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r)
        throw std::invalid_argument(
            fmt::format("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank));
    return static_cast<std::size_t>(a);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
    const std::size_t rank = std::max(a.rank(), b.rank());
    std::array<std::size_t, Shape::max_rank> dims{};
    for (std::size_t i = 0; i < rank; ++i) {
        // Align from the right: axis i of the result is axis i-(rank-r) of an operand of rank r.
        const std::size_t da = i + a.rank() >= rank ? a[i + a.rank() - rank] : 1;
        const std::size_t db = i + b.rank() >= rank ? b[i + b.rank() - rank] : 1;
        if (da != db && da != 1 && db != 1)
            throw std::invalid_argument(
                fmt::format("{}: shapes {} and {} cannot be broadcast together", op, a, b));
        dims[i] = da == 1 ? db : da;
    }
    return Shape(std::span<const std::size_t>(dims.data(), rank));
}

std::array<std::size_t, Shape::max_rank> contiguous_strides(const Shape& shape) {
    std::array<std::size_t, Shape::max_rank> strides{};
    (void)shape.numel();  // the strides are partial products of it: checked once here
    std::size_t s = 1;
    for (std::size_t i = shape.rank(); i-- > 0;) {
        strides[i] = s;
        s *= shape[i];
    }
    return strides;
}

}  // namespace tapeflow
