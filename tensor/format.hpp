// fmt support for tensors: `fmt::print("{}", t)` shows the values as nested brackets followed by
// the shape; large tensors show their first and last three entries along each axis.
#pragma once

#include <string>

#include <fmt/format.h>

#include "tensor/tensor.hpp"

namespace tapeflow {

// Values formatted with `{:.{precision}g}`; axes longer than 2·edge_items + 1 are elided with "...".
std::string to_string(const Tensor& t, int precision = 6, std::size_t edge_items = 3);

}  // namespace tapeflow

template <>
struct fmt::formatter<tapeflow::Tensor> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const tapeflow::Tensor& t, FormatContext& ctx) const {
        return fmt::formatter<std::string_view>::format(tapeflow::to_string(t), ctx);
    }
};
