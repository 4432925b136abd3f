#include "flows/bijector.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"

namespace tapeflow::flows {

void require_batch(const Var& v, std::size_t dim, const std::string& who) {
    const Shape& s = v.shape();
    if (s.rank() != 2 || s[0] == 0)
        throw std::invalid_argument(fmt::format("{}: expects a non-empty batch [N, D], got shape {}", who, s));
    if (dim != 0 && s[1] != dim)
        throw std::invalid_argument(
            fmt::format("{}: expects dimension D = {}, got shape {}", who, dim, s));
}

Transformed compose(const Var& input, std::size_t count,
                    const std::function<Transformed(std::size_t k, const Var& value)>& step) {
    Transformed total{input, Var()};
    for (std::size_t k = 0; k < count; ++k) {
        const Transformed t = step(k, total.value);
        total.value = t.value;
        total.log_abs_det_jacobian = total.log_abs_det_jacobian.value().defined()
                                         ? total.log_abs_det_jacobian + t.log_abs_det_jacobian
                                         : t.log_abs_det_jacobian;
    }
    if (!total.log_abs_det_jacobian.value().defined())
        total.log_abs_det_jacobian = Var(Tensor::zeros(Shape{input.shape()[0]}));
    return total;
}

}  // namespace tapeflow::flows
