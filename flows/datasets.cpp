#include "flows/datasets.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::flows {

namespace {

constexpr double pi = std::numbers::pi;

// Fills an [n, 2] batch point by point: point(rng) returns one (x, y).
template <class Point>
Tensor sample_points(std::size_t n, Rng& rng, Point point) {
    Tensor out(Shape{n, 2});
    double* p = out.data();
    for (std::size_t i = 0; i < n; ++i) {
        const auto [x, y] = point(rng);
        p[2 * i] = x;
        p[2 * i + 1] = y;
    }
    return out;
}

struct Xy {
    double x, y;
};

}  // namespace

Tensor sample_moons(std::size_t n, Rng& rng, double noise) {
    if (!(noise >= 0) || !std::isfinite(noise))
        throw std::invalid_argument(fmt::format("sample_moons: noise must be a finite std ≥ 0, got {}", noise));
    return sample_points(n, rng, [noise](Rng& r) {
        const double t = pi * r.uniform();
        const bool outer = r.below(2) == 0;
        const Xy on_arc = outer ? Xy{std::cos(t), std::sin(t)} : Xy{1 - std::cos(t), 0.5 - std::sin(t)};
        const double ex = r.normal();
        const double ey = r.normal();
        return Xy{on_arc.x + noise * ex, on_arc.y + noise * ey};
    });
}

Tensor sample_eight_gaussians(std::size_t n, Rng& rng) {
    return sample_points(n, rng, [](Rng& r) {
        const double angle = static_cast<double>(r.below(8)) * pi / 4;
        const double ex = r.normal();
        const double ey = r.normal();
        return Xy{(4 * std::cos(angle) + 0.5 * ex) / std::numbers::sqrt2,
                  (4 * std::sin(angle) + 0.5 * ey) / std::numbers::sqrt2};
    });
}

Tensor sample_checkerboard(std::size_t n, Rng& rng) {
    return sample_points(n, rng, [](Rng& r) {
        // x picks the column i = ⌊x/2⌋ uniformly; j is then one of the two rows of the same
        // parity, so that i + j is even.
        const double x = r.uniform(-4, 4);
        const auto i = static_cast<long>(std::floor(x / 2));
        const long parity = ((i % 2) + 2) % 2;
        const long j = -2 + parity + 2 * static_cast<long>(r.below(2));
        return Xy{x, 2 * static_cast<double>(j) + r.uniform(0, 2)};
    });
}

Tensor sample_rings(std::size_t n, Rng& rng) {
    return sample_points(n, rng, [](Rng& r) {
        const double radius = 0.75 * static_cast<double>(4 - r.below(4));
        const double angle = r.uniform(0, 2 * pi);
        const double ex = r.normal();
        const double ey = r.normal();
        return Xy{radius * std::cos(angle) + 0.08 * ex, radius * std::sin(angle) + 0.08 * ey};
    });
}

Tensor sample_pinwheel(std::size_t n, Rng& rng) {
    return sample_points(n, rng, [](Rng& r) {
        const double arm = static_cast<double>(r.below(5));
        const double radial = 1 + 0.3 * r.normal();
        const double tangential = 0.1 * r.normal();
        // Each arm bends further the further out the point lies.
        const double a = 2 * pi * arm / 5 + 0.25 * std::exp(radial);
        return Xy{2 * (radial * std::cos(a) + tangential * std::sin(a)),
                  2 * (-radial * std::sin(a) + tangential * std::cos(a))};
    });
}

Tensor sample_two_spirals(std::size_t n, Rng& rng) {
    return sample_points(n, rng, [](Rng& r) {
        // The angle m runs to 540° = 3π; √u puts more points on the longer outer turns.
        const double m = 3 * pi * std::sqrt(r.uniform());
        const double sign = r.below(2) == 0 ? 1.0 : -1.0;
        const double x = sign * (-std::cos(m) * m + 0.5 * r.uniform()) / 3;
        const double y = sign * (std::sin(m) * m + 0.5 * r.uniform()) / 3;
        const double ex = r.normal();
        const double ey = r.normal();
        return Xy{x + 0.1 * ex, y + 0.1 * ey};
    });
}

const std::vector<Dataset>& datasets() {
    // Entropies: see datasets.hpp for how each was obtained.
    static const std::vector<Dataset> all{
        {"moons", "two interleaved half circles (sklearn make_moons), noise 0.05",
         [](std::size_t n, Rng& rng) { return sample_moons(n, rng); }, 0.28923},
        {"8gaussians", "8 Gaussians (std 0.354) on a circle of radius 2.83", sample_eight_gaussians, 2.83158},
        {"checkerboard", "uniform on the 8 dark squares of a checkerboard on [-4, 4)^2", sample_checkerboard,
         std::log(32.0)},
        {"rings", "4 concentric rings of radii 0.75 to 3, noise 0.08", sample_rings, std::nullopt},
        {"pinwheel", "5 curved arms of a pinwheel", sample_pinwheel, std::nullopt},
        {"2spirals", "two interleaved spirals", sample_two_spirals, std::nullopt},
    };
    return all;
}

std::vector<std::string> dataset_names() {
    std::vector<std::string> names;
    for (const Dataset& d : datasets()) names.push_back(d.name);
    return names;
}

const Dataset& dataset(const std::string& name) {
    for (const Dataset& d : datasets())
        if (d.name == name) return d;
    throw std::invalid_argument(
        fmt::format("dataset: unknown data set '{}'; valid names are {}", name, fmt::join(dataset_names(), ", ")));
}

Tensor sample_dataset(const std::string& name, std::size_t n, Rng& rng) { return dataset(name).sample(n, rng); }

std::optional<double> dataset_entropy(const std::string& name) { return dataset(name).entropy; }

}  // namespace tapeflow::flows
