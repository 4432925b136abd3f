#include "flows/ode.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"

namespace tapeflow::flows::ode {

namespace {

// y + c·k, entry by entry.
State axpy(const State& y, double c, const State& k) {
    State out;
    out.reserve(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) out.push_back(y[i] + c * k[i]);
    return out;
}

State evaluate(const Field& f, const State& y, double t) {
    State k = f(y, t);
    if (k.size() != y.size())
        throw std::invalid_argument(
            fmt::format("ode::rk4: the field returned {} entries for a state of {}", k.size(), y.size()));
    for (std::size_t i = 0; i < y.size(); ++i)
        if (!k[i].value().defined() || k[i].shape() != y[i].shape())
            throw std::invalid_argument(fmt::format("ode::rk4: the field's entry {} has shape {}, the state's {}", i,
                                                    k[i].value().defined() ? fmt::format("{}", k[i].shape()) : "undefined",
                                                    y[i].shape()));
    return k;
}

void require_valid(const State& y0, double t0, double t1, std::size_t steps) {
    if (steps == 0) throw std::invalid_argument("ode::rk4: steps must be at least 1");
    if (!std::isfinite(t0) || !std::isfinite(t1))
        throw std::invalid_argument(fmt::format("ode::rk4: times must be finite, got t0 = {}, t1 = {}", t0, t1));
    if (y0.empty()) throw std::invalid_argument("ode::rk4: the state is empty");
    for (std::size_t i = 0; i < y0.size(); ++i)
        if (!y0[i].value().defined()) throw std::invalid_argument(fmt::format("ode::rk4: state entry {} is undefined", i));
}

}  // namespace

State rk4_step(const Field& f, const State& y, double t, double h) {
    const State k1 = evaluate(f, y, t);
    const State k2 = evaluate(f, axpy(y, h / 2, k1), t + h / 2);
    const State k3 = evaluate(f, axpy(y, h / 2, k2), t + h / 2);
    const State k4 = evaluate(f, axpy(y, h, k3), t + h);
    State out;
    out.reserve(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) out.push_back(y[i] + (h / 6) * (k1[i] + 2.0 * (k2[i] + k3[i]) + k4[i]));
    return out;
}

std::vector<State> rk4_trajectory(const Field& f, const State& y0, double t0, double t1, std::size_t steps) {
    require_valid(y0, t0, t1, steps);
    const double h = (t1 - t0) / static_cast<double>(steps);
    std::vector<State> path{y0};
    path.reserve(steps + 1);
    for (std::size_t s = 0; s < steps; ++s) {
        // t from the step count, not by adding h repeatedly, so the last step ends exactly at t1.
        const double t = t0 + (t1 - t0) * static_cast<double>(s) / static_cast<double>(steps);
        path.push_back(rk4_step(f, path.back(), t, h));
    }
    return path;
}

State rk4(const Field& f, const State& y0, double t0, double t1, std::size_t steps) {
    require_valid(y0, t0, t1, steps);
    const double h = (t1 - t0) / static_cast<double>(steps);
    State y = y0;
    for (std::size_t s = 0; s < steps; ++s) {
        const double t = t0 + (t1 - t0) * static_cast<double>(s) / static_cast<double>(steps);
        y = rk4_step(f, y, t, h);
    }
    return y;
}

}  // namespace tapeflow::flows::ode
