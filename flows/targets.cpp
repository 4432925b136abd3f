#include "flows/targets.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/bijector.hpp"
#include "tensor/broadcast.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tensor/stable.hpp"

namespace tapeflow::flows {

namespace {

// (z1, z2) of a batch z [N, 2], each as [N].
std::pair<Var, Var> coordinates(const Var& z, const char* who) {
    require_batch(z, 2, who);
    const Shape column{z.shape()[0]};
    const std::vector<Var> parts = split(z, 1, {1, 1});
    return {reshape(parts[0], column), reshape(parts[1], column)};
}

// −½(x/s)²: the log of an unnormalized Gaussian bump of width s.
Var log_bump(const Var& x, double s) { return -0.5 * square(x / s); }

// w1 = sin(2π z1 / 4), shared by U2–U4.
Var w1(const Var& z1) { return sin((2 * std::numbers::pi / 4) * z1); }

void require_energy_values(const Tensor& u, std::size_t n, const char* who) {
    if (u.rank() != 1 || u.numel() != n)
        throw std::invalid_argument(
            fmt::format("{}: the energy must map a batch [N, D] to [N]; for N = {} it returned shape {}", who, n, u.shape()));
}

// Rows [r0, r0 + rows) of box_grid(box, n).
Tensor grid_rows(double box, std::size_t n, std::size_t r0, std::size_t rows) {
    const double h = 2 * box / static_cast<double>(n);
    Tensor z(Shape{rows * n, 2});
    double* p = z.data();
    for (std::size_t r = 0; r < rows; ++r) {
        const double y = -box + (static_cast<double>(r0 + r) + 0.5) * h;
        for (std::size_t c = 0; c < n; ++c) {
            *p++ = -box + (static_cast<double>(c) + 0.5) * h;
            *p++ = y;
        }
    }
    return z;
}

void require_box(double box, std::size_t n, const char* who) {
    if (!(box > 0) || !std::isfinite(box))
        throw std::invalid_argument(fmt::format("{}: the box half-width must be positive and finite, got {}", who, box));
    if (n == 0) throw std::invalid_argument(fmt::format("{}: the grid needs at least one point per axis, got n = 0", who));
}

}  // namespace

Var U1(const Var& z) {
    auto [z1, z2] = coordinates(z, "U1");
    const Var ring = 0.5 * square((norm(z, 1) - 2.0) / 0.4);
    return ring - log_add_exp(log_bump(z1 - 2.0, 0.6), log_bump(z1 + 2.0, 0.6));
}

Var U2(const Var& z) {
    auto [z1, z2] = coordinates(z, "U2");
    return 0.5 * square((z2 - w1(z1)) / 0.4);
}

Var U3(const Var& z) {
    auto [z1, z2] = coordinates(z, "U3");
    const Var w2 = 3.0 * exp(log_bump(z1 - 1.0, 0.6));
    const Var d = z2 - w1(z1);
    return -log_add_exp(log_bump(d, 0.35), log_bump(d + w2, 0.35));
}

Var U4(const Var& z) {
    auto [z1, z2] = coordinates(z, "U4");
    const Var w3 = 3.0 * sigmoid((z1 - 1.0) / 0.3);
    const Var d = z2 - w1(z1);
    return -log_add_exp(log_bump(d, 0.4), log_bump(d + w3, 0.35));
}

const std::vector<Target>& targets() {
    static const std::vector<Target> all{
        {"u1", "U1: a ring of radius 2 cut into two lobes at z1 = ±2", U1, true},
        {"u2", "U2: a band along the sine wave z2 = sin(πz1/2)", U2, false},
        {"u3", "U3: the sine band and a second band that splits off it near z1 = 1", U3, false},
        {"u4", "U4: the sine band and a copy shifted down by a sigmoid step at z1 = 1", U4, false},
    };
    return all;
}

std::vector<std::string> target_names() {
    std::vector<std::string> names;
    for (const Target& t : targets()) names.push_back(t.name);
    return names;
}

const Target& target(const std::string& name) {
    for (const Target& t : targets())
        if (t.name == name) return t;
    throw std::invalid_argument(
        fmt::format("target: unknown target '{}'; valid names are {}", name, fmt::join(target_names(), ", ")));
}

Energy confined_to_box(Energy energy, double box, double width) {
    if (!energy) throw std::invalid_argument("confined_to_box: the energy function is empty");
    if (!(box > 0 && std::isfinite(box)) || !(width > 0 && std::isfinite(width)))
        throw std::invalid_argument(
            fmt::format("confined_to_box: box and width must be > 0 and finite, got {} and {}", box, width));
    return [energy = std::move(energy), box, width](const Var& z) {
        return energy(z) + 0.5 * sum(square(relu(abs(z) - box) / width), 1);
    };
}

Tensor energy_values(const Energy& energy, const Tensor& z) {
    NoGrad no_grad;
    Tensor u = energy(Var(z)).value();
    require_energy_values(u, z.rank() >= 1 ? z.shape()[0] : 0, "energy_values");
    return u;
}

Tensor box_grid(double box, std::size_t n) {
    require_box(box, n, "box_grid");
    return grid_rows(box, n, 0, n);
}

double log_partition_box(const Energy& energy, double box, std::size_t n) {
    require_box(box, n, "log_partition_box");
    NoGrad no_grad;
    // Blocks of ~4096 points keep the temporaries in cache (and off mmap) whatever n is.
    const std::size_t rows_per_block = std::max<std::size_t>(1, 4096 / n);
    double log_sum = -std::numeric_limits<double>::infinity();
    for (std::size_t r0 = 0; r0 < n; r0 += rows_per_block) {
        const std::size_t rows = std::min(rows_per_block, n - r0);
        const Tensor z = grid_rows(box, n, r0, rows);
        const Tensor u = energy(Var(z)).value();
        require_energy_values(u, rows * n, "log_partition_box");
        // +inf is a legitimate energy (zero density); NaN is a bug in the energy.
        const std::span<const double> values = u.span();
        const auto nan = std::find_if(values.begin(), values.end(), [](double v) { return std::isnan(v); });
        if (nan != values.end()) {
            const auto i = static_cast<std::size_t>(nan - values.begin());
            throw std::invalid_argument(fmt::format("log_partition_box: the energy is NaN at z = ({}, {})",
                                                    z[2 * i], z[2 * i + 1]));
        }
        log_sum = stable::log_add_exp(log_sum, logsumexp(neg(u)).item());
    }
    const double h = 2 * box / static_cast<double>(n);
    return log_sum + 2 * std::log(h);
}

Tensor energy_density_grid(const Energy& energy, double box, std::size_t n) {
    require_box(box, n, "energy_density_grid");
    const double log_z = log_partition_box(energy, box);
    const Tensor u = energy_values(energy, box_grid(box, n));
    return exp(neg(u) - log_z).reshape(Shape{n, n});
}

}  // namespace tapeflow::flows
