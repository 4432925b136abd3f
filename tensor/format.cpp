#include "tensor/format.hpp"

#include <iterator>

namespace tapeflow {

namespace {

// Nested rows line up under the first one, past the "tensor(" prefix and the open brackets.
constexpr std::size_t prefix_width = 7;

void append_axis(std::string& out, const Tensor& t, std::size_t axis, std::size_t offset, int precision,
                 std::size_t edge_items, const std::array<std::size_t, Shape::max_rank>& strides) {
    if (axis == t.rank()) {
        fmt::format_to(std::back_inserter(out), "{:.{}g}", t[offset], precision);
        return;
    }
    const std::size_t n = t.shape()[axis];
    const bool elide = n > 2 * edge_items + 1;
    const std::string separator = axis + 1 == t.rank() ? ", " : ",\n" + std::string(prefix_width + axis + 1, ' ');
    out += '[';
    for (std::size_t i = 0; i < n; ++i) {
        if (elide && i == edge_items) {
            // The elided rows get a line of their own, as in NumPy.
            out += "...";
            out += separator;
            i = n - edge_items;
        }
        append_axis(out, t, axis + 1, offset + i * strides[axis], precision, edge_items, strides);
        if (i + 1 < n) out += separator;
    }
    out += ']';
}

}  // namespace

std::string to_string(const Tensor& t, int precision, std::size_t edge_items) {
    if (!t.defined()) return "tensor(undefined)";
    std::string out = "tensor(";
    if (t.numel() == 0) out += "[]";
    else append_axis(out, t, 0, 0, precision, edge_items, contiguous_strides(t.shape()));
    fmt::format_to(std::back_inserter(out), ", shape={})", t.shape());
    return out;
}

}  // namespace tapeflow
