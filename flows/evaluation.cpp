#include "flows/evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "flows/bijector.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

// Samples per chunk: large enough that per-op overhead vanishes, small enough for any flow's
// intermediate values to stay modest.
constexpr std::size_t chunk_size = 8192;

void require_2d(const Flow& flow, const char* who) {
    if (flow.dim() != 2)
        throw std::invalid_argument(fmt::format("{}: the flow must be 2-D, got D = {}", who, flow.dim()));
}

// log p(x) of a batch [N, D] → [N], chunk by chunk.
Tensor log_prob_in_chunks(Flow& flow, const Tensor& x) {
    const std::size_t n = x.shape()[0];
    std::vector<Tensor> parts;
    for (std::size_t start = 0; start < n; start += chunk_size)
        parts.push_back(flow.log_prob(Var(narrow(x, 0, start, std::min(chunk_size, n - start)))).value());
    return parts.size() == 1 ? parts[0] : concat(parts, 0);
}

// The mean of `terms` and the variance of that mean, s²/n with s² on n − 1 degrees of freedom (0 for
// a single term); two passes, so no cancellation.
struct MeanAndVariance {
    double mean = 0, variance_of_mean = 0;
};
MeanAndVariance mean_and_variance(std::span<const double> terms) {
    const auto n = static_cast<double>(terms.size());
    double sum = 0;
    for (double t : terms) sum += t;
    MeanAndVariance r{.mean = sum / n};
    if (terms.size() < 2) return r;
    double squares = 0;
    for (double t : terms) squares += (t - r.mean) * (t - r.mean);
    r.variance_of_mean = squares / (n - 1) / n;
    return r;
}

bool inside_box(const Tensor& x, std::size_t i, double box) {
    return std::abs(x[2 * i]) < box && std::abs(x[2 * i + 1]) < box;
}

}  // namespace

ReverseKLEvaluation evaluate_reverse_kl(Flow& flow, const Energy& energy, std::size_t n_samples, Rng& rng,
                                        double box) {
    require_2d(flow, "evaluate_reverse_kl");
    if (n_samples == 0) throw std::invalid_argument("evaluate_reverse_kl: n_samples must be at least 1");
    if (!energy) throw std::invalid_argument("evaluate_reverse_kl: the energy function is empty");
    ReverseKLEvaluation result;
    NoGrad no_grad;
    std::vector<double> terms;  // log q(x_n) + U(x_n)
    terms.reserve(n_samples);
    while (terms.size() < n_samples) {
        const std::size_t m = std::min(chunk_size, n_samples - terms.size());
        const FlowSample s = flow.sample_and_log_prob(m, rng);
        const Tensor u = energy(s.value).value();
        if (!(u.shape() == Shape{m}))
            throw std::invalid_argument(fmt::format(
                "evaluate_reverse_kl: the energy must return one value per sample, shape [{}], got {}", m, u.shape()));
        const Tensor chunk = s.log_prob.value() + u;
        const std::span<const double> values = chunk.span();
        terms.insert(terms.end(), values.begin(), values.end());
    }
    const MeanAndVariance m = mean_and_variance(terms);
    result.loss = m.mean;
    result.standard_error = std::sqrt(m.variance_of_mean);
    result.log_z_box = log_partition_box(energy, box);
    result.kl_box = result.loss + result.log_z_box;
    return result;
}

BoxKLEvaluation evaluate_box_kl(Flow& flow, const Energy& energy, double log_z_box, std::size_t n_samples, Rng& rng,
                                double box) {
    require_2d(flow, "evaluate_box_kl");
    if (n_samples == 0) throw std::invalid_argument("evaluate_box_kl: n_samples must be at least 1");
    if (!energy) throw std::invalid_argument("evaluate_box_kl: the energy function is empty");
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("evaluate_box_kl: box must be > 0 and finite, got {}", box));
    if (!std::isfinite(log_z_box))
        throw std::invalid_argument(fmt::format("evaluate_box_kl: log_z_box must be finite, got {}", log_z_box));
    NoGrad no_grad;
    std::vector<double> terms;  // log q(x) + U(x) of the samples inside the box
    for (std::size_t done = 0; done < n_samples;) {
        const std::size_t m = std::min(chunk_size, n_samples - done);
        const FlowSample s = flow.sample_and_log_prob(m, rng);
        const Tensor u = energy(s.value).value();
        if (!(u.shape() == Shape{m}))
            throw std::invalid_argument(fmt::format(
                "evaluate_box_kl: the energy must return one value per sample, shape [{}], got {}", m, u.shape()));
        const Tensor x = s.value.value(), log_q = s.log_prob.value();
        for (std::size_t i = 0; i < m; ++i)
            if (inside_box(x, i, box)) terms.push_back(log_q[i] + u[i]);
        done += m;
    }
    BoxKLEvaluation r;
    const auto n = static_cast<double>(n_samples), inside = static_cast<double>(terms.size());
    r.mass = inside / n;
    if (terms.size() < 2) return r;
    const MeanAndVariance m = mean_and_variance(terms);
    r.kl = m.mean - std::log(r.mass) + log_z_box;
    // Var(log m̂) ≈ (1 − m)/(m n) by the delta method on the binomial fraction.
    r.standard_error = std::sqrt(m.variance_of_mean + (1 - r.mass) / (r.mass * n));
    return r;
}

double evaluate_nll(Flow& flow, const Tensor& x) {
    require_batch(Var(x), flow.dim(), "evaluate_nll");
    NoGrad no_grad;
    return -mean(log_prob_in_chunks(flow, x)).item();
}

Tensor density_grid(Flow& flow, double box, std::size_t n) {
    require_2d(flow, "density_grid");
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("density_grid: the box half-width must be positive and finite, got {}", box));
    if (n == 0) throw std::invalid_argument("density_grid: the grid needs at least one point per axis, got n = 0");
    NoGrad no_grad;
    return exp(log_prob_in_chunks(flow, box_grid(box, n))).reshape(Shape{n, n});
}

double grid_mass(const Tensor& density, double box) {
    if (density.shape().rank() != 2 || density.shape()[0] != density.shape()[1] || density.numel() == 0)
        throw std::invalid_argument(
            fmt::format("grid_mass: expected a square [n, n] density grid, got {}", density.shape()));
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("grid_mass: the box half-width must be positive and finite, got {}", box));
    const double h = 2 * box / static_cast<double>(density.shape()[0]);
    return sum(density).item() * h * h;
}

BoxMass shifted_grid_mass(Flow& flow, double box, std::size_t n, std::size_t shifts, Rng& rng) {
    require_2d(flow, "shifted_grid_mass");
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("shifted_grid_mass: box must be > 0 and finite, got {}", box));
    if (n == 0) throw std::invalid_argument("shifted_grid_mass: the grid needs at least one point per axis, got n = 0");
    if (shifts < 2)
        throw std::invalid_argument(fmt::format("shifted_grid_mass: an error bar needs at least 2 shifts, got {}", shifts));
    NoGrad no_grad;
    const Tensor centres = box_grid(box, n);
    const double h = 2 * box / static_cast<double>(n);
    std::vector<double> masses;
    for (std::size_t k = 0; k < shifts; ++k) {
        const double ux = rng.uniform(-h / 2, h / 2), uy = rng.uniform(-h / 2, h / 2);
        Tensor points = centres.clone();
        for (std::size_t i = 0; i < n * n; ++i) points[2 * i] += ux, points[2 * i + 1] += uy;
        masses.push_back(sum(exp(log_prob_in_chunks(flow, points))).item() * h * h);
    }
    const MeanAndVariance m = mean_and_variance(masses);
    return {m.mean, std::sqrt(m.variance_of_mean)};
}

BoxMass box_fraction(Flow& flow, std::size_t n_samples, Rng& rng, double box) {
    require_2d(flow, "box_fraction");
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("box_fraction: box must be > 0 and finite, got {}", box));
    if (n_samples == 0) throw std::invalid_argument("box_fraction: n_samples must be at least 1");
    NoGrad no_grad;
    std::size_t inside = 0;
    for (std::size_t done = 0; done < n_samples;) {
        const std::size_t m = std::min(chunk_size, n_samples - done);
        const Tensor x = flow.sample(m, rng);
        for (std::size_t i = 0; i < m; ++i)
            if (inside_box(x, i, box)) ++inside;
        done += m;
    }
    const auto n = static_cast<double>(n_samples);
    const double p = static_cast<double>(inside) / n;
    return {p, std::sqrt(std::max(p * (1 - p), 1 / n) / n)};
}

}  // namespace tapeflow::flows
