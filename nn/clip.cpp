#include "nn/clip.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

void require_gradients(const std::vector<Parameter*>& parameters, const char* op) {
    for (std::size_t i = 0; i < parameters.size(); ++i) {
        const Parameter* p = parameters[i];
        if (!p) throw std::invalid_argument(fmt::format("{}: parameter {} is null", op, i));
        if (!p->grad.defined() || !(p->grad.shape() == p->shape()))
            throw std::invalid_argument(fmt::format("{}: parameter {} (shape {}) has no gradient of its shape", op, i,
                                                    p->shape()));
    }
}

double total_norm(const std::vector<Parameter*>& parameters) {
    double sum_of_squares = 0;
    double largest = 0;
    for (const Parameter* p : parameters)
        for (const double g : p->grad.span()) {
            sum_of_squares += g * g;
            largest = std::max(largest, std::abs(g));
        }
    if (std::isfinite(sum_of_squares) || !std::isfinite(largest)) return std::sqrt(sum_of_squares);
    // Every element is finite but their squares overflowed (‖g‖ > 1e154): divide by the largest
    // |g| first, as BLAS's dnrm2 does, so ‖g‖ comes out finite whenever it is representable.
    double scaled = 0;
    for (const Parameter* p : parameters)
        for (const double g : p->grad.span()) scaled += (g / largest) * (g / largest);
    return largest * std::sqrt(scaled);
}

}  // namespace

double grad_norm(const std::vector<Parameter*>& parameters) {
    require_gradients(parameters, "grad_norm");
    return total_norm(parameters);
}

double clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm, const ClipOptions& options) {
    if (!(max_norm > 0))
        throw std::invalid_argument(fmt::format("clip_grad_norm: max_norm must be > 0, got {}", max_norm));
    require_gradients(parameters, "clip_grad_norm");
    const double norm = total_norm(parameters);
    if (!std::isfinite(norm)) {
        if (options.error_if_nonfinite)
            throw std::runtime_error(fmt::format(
                "clip_grad_norm: the total gradient norm is {}; a gradient holds NaN or inf", norm));
        return norm;
    }
    const double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1)
        for (Parameter* p : parameters) p->grad *= coefficient;
    return norm;
}

void clip_grad_value(const std::vector<Parameter*>& parameters, double clip_value) {
    if (!(clip_value >= 0))
        throw std::invalid_argument(fmt::format("clip_grad_value: clip_value must be ≥ 0, got {}", clip_value));
    require_gradients(parameters, "clip_grad_value");
    for (Parameter* p : parameters)
        for (double& g : p->grad.span()) g = std::clamp(g, -clip_value, clip_value);
}

}  // namespace tapeflow::nn
