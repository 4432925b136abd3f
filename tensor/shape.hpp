// Shape: the dimensions of a tensor, stored inline (no heap allocation), and the
// NumPy broadcasting rule that every elementwise op and its backward share.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace tapeflow {

class Shape {
public:
    // Eight axes cover every tensor in the project (images are [N, C, H, W]);
    // keeping them inline makes a Shape as cheap to copy as a few integers.
    static constexpr std::size_t max_rank = 8;

    // Every shape is checked where it is made: a rank above max_rank, or dims whose product (the
    // element count) does not fit in std::size_t, throw std::invalid_argument naming the dims. (An
    // unchecked product wraps around: [2⁶² + 1, 4] would claim 4 elements and every kernel reading
    // it would run off its buffer.) A zero dim makes the shape empty, whatever the others are.
    Shape() = default;  // rank 0: a scalar
    Shape(std::initializer_list<std::size_t> dims);
    explicit Shape(std::span<const std::size_t> dims);

    std::size_t rank() const { return rank_; }
    // Checked again here, since operator[] can change a dim after construction.
    std::size_t numel() const;
    std::size_t operator[](std::size_t axis) const { return dims_[axis]; }
    std::size_t& operator[](std::size_t axis) { return dims_[axis]; }
    const std::size_t* begin() const { return dims_.data(); }
    const std::size_t* end() const { return dims_.data() + rank_; }
    void push_back(std::size_t dim);

    friend bool operator==(const Shape& a, const Shape& b);

    // "[2, 3]"; "[]" for a scalar.
    std::string str() const;

private:
    std::array<std::size_t, max_rank> dims_{};
    std::size_t rank_ = 0;
};

// Maps a possibly negative axis (−1 = last) into [0, rank); throws naming `op` otherwise.
std::size_t normalize_axis(int axis, std::size_t rank, std::string_view op);

// NumPy broadcasting: align trailing axes; each pair must be equal or contain a 1.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

// Row-major strides of a contiguous tensor of this shape (in elements).
std::array<std::size_t, Shape::max_rank> contiguous_strides(const Shape& shape);

}  // namespace tapeflow

template <>
struct fmt::formatter<tapeflow::Shape> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const tapeflow::Shape& s, FormatContext& ctx) const {
        return fmt::formatter<std::string_view>::format(s.str(), ctx);
    }
};
