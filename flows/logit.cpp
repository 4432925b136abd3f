#include "flows/logit.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"

namespace tapeflow::flows {

namespace {

// The latent → data side of p = α + (1 − 2α)x, y = logit(p): x = (σ(y) − α)/(1 − 2α), whose
// log-det is log σ'(y) − log(1 − 2α) per dimension, with log σ'(y) = log σ(y) + log σ(−y)
// (σ(y) = p and σ(−y) = 1 − p, so this is minus docs/theory.md §6's log|dy/dx|).
Transformed sigmoid_map(const Var& y, double alpha, const char* who) {
    require_batch(y, 0, who);
    const double width = 1 - 2 * alpha;
    const Var log_det = sum(log_sigmoid(y) + log_sigmoid(-y), 1);
    if (alpha == 0) return {sigmoid(y), log_det};
    const double d = static_cast<double>(y.shape()[1]);
    return {(sigmoid(y) - alpha) / width, log_det - d * std::log(width)};
}

// The data → latent side: y = log p − log(1 − p), p = α + (1 − 2α)x, with
// log|dy/dx| = log(1 − 2α) − log p − log(1 − p) per dimension (docs/theory.md §6).
Transformed logit_map(const Var& x, double alpha, const char* who) {
    require_batch(x, 0, who);
    const double width = 1 - 2 * alpha;
    const std::size_t d = x.shape()[1];
    const Tensor& v = x.value();
    for (std::size_t i = 0; i < v.numel(); ++i) {
        const double p = alpha + width * v[i];
        if (!(p > 0 && p < 1)) {
            const std::string where = fmt::format("{}: element [{}, {}] = {}", who, i / d, i % d, v[i]);
            if (alpha == 0) throw std::invalid_argument(where + " is outside the open interval (0, 1) of the logit");
            throw std::invalid_argument(fmt::format(
                "{} is outside the open interval ({:.6g}, {:.6g}) where the logit of p = {} + {}·x is defined", where,
                -alpha / width, (1 - alpha) / width, alpha, width));
        }
    }
    const Var p = alpha == 0 ? x : alpha + width * x;
    const Var log_p = log(p);
    const Var log_q = log1p(-p);  // log(1 − p), accurate for small p; exact subtraction for p ≥ ½
    const Var log_det = -sum(log_p + log_q, 1);
    return {log_p - log_q, alpha == 0 ? log_det : log_det + static_cast<double>(d) * std::log(width)};
}

}  // namespace

Transformed Sigmoid::forward(const Var& z) { return sigmoid_map(z, 0, "Sigmoid::forward"); }
Transformed Sigmoid::inverse(const Var& x) { return logit_map(x, 0, "Sigmoid::inverse"); }

Transformed Logit::forward(const Var& z) { return logit_map(z, 0, "Logit::forward"); }
Transformed Logit::inverse(const Var& x) { return sigmoid_map(x, 0, "Logit::inverse"); }

LogitPreprocessing::LogitPreprocessing(double alpha) : alpha_(alpha) {
    if (!(alpha >= 0 && alpha < 0.5))
        throw std::invalid_argument(fmt::format("LogitPreprocessing: alpha must be in [0, 0.5), got {}", alpha));
}

Transformed LogitPreprocessing::forward(const Var& y) { return sigmoid_map(y, alpha_, "LogitPreprocessing::forward"); }
Transformed LogitPreprocessing::inverse(const Var& x) {
    return logit_map(x, alpha_, "LogitPreprocessing::inverse");
}

std::string LogitPreprocessing::name() const { return fmt::format("LogitPreprocessing(alpha = {})", alpha_); }

Tensor dequantize(const Tensor& pixels, Rng& rng) {
    require_defined(pixels, "dequantize");
    Tensor x(pixels.shape());
    for (std::size_t i = 0; i < pixels.numel(); ++i) {
        const double v = pixels[i];
        if (!(v >= 0 && v <= 255 && v == std::floor(v)))
            throw std::invalid_argument(
                fmt::format("dequantize: pixels must be integers in 0..255, but element {} is {}", i, v));
        x[i] = (v + rng.uniform()) / 256;
    }
    return x;
}

double bits_per_dim(double log_p_y, double sum_log_det, std::size_t dim) {
    if (dim == 0) throw std::invalid_argument("bits_per_dim: the dimension D must be at least 1");
    const double d = static_cast<double>(dim);
    // log p(v) ≈ log p_y(y) + Σ log|dy/dx| − D log 256 (docs/theory.md §6).
    const double log_p_v = log_p_y + sum_log_det - d * std::log(256.0);
    return -log_p_v / (d * std::log(2.0));
}

Tensor bits_per_dim(const Tensor& log_p_y, const Tensor& sum_log_det, std::size_t dim) {
    require_defined(log_p_y, "bits_per_dim");
    require_defined(sum_log_det, "bits_per_dim");
    if (log_p_y.rank() != 1 || !(log_p_y.shape() == sum_log_det.shape()))
        throw std::invalid_argument(fmt::format(
            "bits_per_dim: log_p_y and sum_log_det must be vectors [N] of the same length, got {} and {}",
            log_p_y.shape(), sum_log_det.shape()));
    Tensor out(log_p_y.shape());
    for (std::size_t i = 0; i < out.numel(); ++i) out[i] = bits_per_dim(log_p_y[i], sum_log_det[i], dim);
    return out;
}

}  // namespace tapeflow::flows
