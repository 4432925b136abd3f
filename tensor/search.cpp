#include "tensor/search.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/format.hpp"

namespace tapeflow {

Tensor searchsorted(const Tensor& sorted, const Tensor& values, Side side) {
    require_defined(sorted, "searchsorted");
    require_defined(values, "searchsorted");
    if (sorted.rank() == 0 || values.rank() == 0)
        throw std::invalid_argument(fmt::format("searchsorted: needs a sorted sequence [..., K] and values [..., M], got {} and {}",
                                                sorted.shape(), values.shape()));
    const bool shared = sorted.rank() == 1;
    bool fits = shared || sorted.rank() == values.rank();
    for (std::size_t i = 0; fits && !shared && i + 1 < sorted.rank(); ++i) fits = sorted.shape()[i] == values.shape()[i];
    if (!fits)
        throw std::invalid_argument(fmt::format(
            "searchsorted: sequences of shape {} and values of shape {} differ in their leading sizes (a 1-D sequence "
            "is shared by all values)",
            sorted.shape(), values.shape()));
    const std::size_t k = sorted.shape()[sorted.rank() - 1];
    const std::size_t m = values.shape()[values.rank() - 1];
    const std::size_t rows = m == 0 ? 0 : values.numel() / m;
    for (std::size_t r = 0, n_seq = k == 0 ? 0 : sorted.numel() / k; r < n_seq; ++r) {
        const double* seq = sorted.data() + r * k;
        for (std::size_t i = 0; i < k; ++i)
            if (std::isnan(seq[i]) || (i > 0 && seq[i] < seq[i - 1]))
                throw std::invalid_argument(fmt::format(
                    "searchsorted: sequence {} is not ascending (or holds NaN) at position {}: {}", r, i,
                    fmt::join(std::span(seq, k), ", ")));
    }
    Tensor out(values.shape());
    for (std::size_t r = 0; r < rows; ++r) {
        const double* seq = sorted.data() + (shared ? 0 : r * k);
        for (std::size_t j = 0; j < m; ++j) {
            const double v = values[r * m + j];
            const double* at = std::isnan(v) ? seq + k
                               : side == Side::left ? std::lower_bound(seq, seq + k, v)
                                                    : std::upper_bound(seq, seq + k, v);
            out[r * m + j] = static_cast<double>(at - seq);
        }
    }
    return out;
}

}  // namespace tapeflow
