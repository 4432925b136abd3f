#include "flows/bijector.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::flows {

void require_batch(const Var& v, std::size_t dim, const std::string& who) {
    const Shape& s = v.shape();
    if (s.rank() != 2 || s[0] == 0)
        throw std::invalid_argument(fmt::format("{}: expects a non-empty batch [N, D], got shape {}", who, s));
    if (dim != 0 && s[1] != dim)
        throw std::invalid_argument(
            fmt::format("{}: expects dimension D = {}, got shape {}", who, dim, s));
}

}  // namespace tapeflow::flows
