#include "nn/init.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

void require_fan(std::size_t fan, const char* which, const char* op) {
    if (fan == 0) throw std::invalid_argument(fmt::format("{}: {} must be positive, got 0", op, which));
}

void require_nonnegative(double value, const char* what, const char* op) {
    if (!(value >= 0) || !std::isfinite(value))
        throw std::invalid_argument(fmt::format("{}: {} must be finite and non-negative, got {}", op, what, value));
}

}  // namespace

std::string Init::str() const {
    switch (kind) {
        case Kind::kaiming_uniform: return fmt::format("kaiming_uniform(a={:g})", parameter);
        case Kind::xavier_uniform: return fmt::format("xavier_uniform(gain={:g})", parameter);
        case Kind::xavier_normal: return fmt::format("xavier_normal(gain={:g})", parameter);
        case Kind::normal: return fmt::format("normal(std={:g})", parameter);
        case Kind::zeros: return "zeros";
    }
    return "unknown";
}

double kaiming_uniform_bound(std::size_t fan_in, double a) {
    require_fan(fan_in, "fan_in", "kaiming_uniform");
    if (!std::isfinite(a)) throw std::invalid_argument(fmt::format("kaiming_uniform: a must be finite, got {}", a));
    // He et al. 2015: Var[w] = gain² / fan_in, and U(−b, b) has variance b²/3.
    const double gain = std::sqrt(2.0 / (1.0 + a * a));
    return gain * std::sqrt(3.0 / static_cast<double>(fan_in));
}

Tensor kaiming_uniform(const Shape& shape, std::size_t fan_in, Rng& rng, double a) {
    const double bound = kaiming_uniform_bound(fan_in, a);
    return rand(shape, rng, -bound, bound);
}

Tensor xavier_uniform(const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng, double gain) {
    require_fan(fan_in, "fan_in", "xavier_uniform");
    require_fan(fan_out, "fan_out", "xavier_uniform");
    require_nonnegative(gain, "gain", "xavier_uniform");
    // Glorot & Bengio 2010, eq. 16: Var[w] = 2 / (fan_in + fan_out) keeps forward and backward variances.
    const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    return rand(shape, rng, -bound, bound);
}

Tensor xavier_normal(const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng, double gain) {
    require_fan(fan_in, "fan_in", "xavier_normal");
    require_fan(fan_out, "fan_out", "xavier_normal");
    require_nonnegative(gain, "gain", "xavier_normal");
    const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
    return randn(shape, rng, 0.0, std);
}

Tensor normal(const Shape& shape, double std, Rng& rng) {
    require_nonnegative(std, "std", "normal");
    return randn(shape, rng, 0.0, std);
}

Tensor zeros(const Shape& shape) { return Tensor::zeros(shape); }

Tensor initialize(const Init& init, const Shape& shape, std::size_t fan_in, std::size_t fan_out, Rng& rng) {
    switch (init.kind) {
        case Init::Kind::kaiming_uniform: return kaiming_uniform(shape, fan_in, rng, init.parameter);
        case Init::Kind::xavier_uniform: return xavier_uniform(shape, fan_in, fan_out, rng, init.parameter);
        case Init::Kind::xavier_normal: return xavier_normal(shape, fan_in, fan_out, rng, init.parameter);
        case Init::Kind::normal: return normal(shape, init.parameter, rng);
        case Init::Kind::zeros: return zeros(shape);
    }
    throw std::invalid_argument("initialize: unknown Init kind");
}

}  // namespace tapeflow::nn
