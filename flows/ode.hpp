// Fixed-step ODE integration on the tape: the classical fourth-order Runge–Kutta method (RK4) for
// dy/dt = f(y, t), y a list of Vars (one or several tensors integrated together, e.g. a continuous
// flow's state z and its running log-det; docs/theory.md §12).
//
// Every stage is recorded like any other computation, so the result is differentiable in y(t0) and in
// whatever f reads (a network's parameters) by backpropagating through the solver ("discretize then
// optimize"). Its gradient is the exact gradient of the discrete map, not an approximation of the
// continuous one: the price is memory linear in the number of steps, which the adjoint method of
// Chen et al. 2018 (§2, eq. 3–5) avoids by solving a second ODE backwards in time.
//
//     ode::Field f = [&](const ode::State& y, double t) { return ode::State{-t * y[0]}; };
//     ode::State y1 = ode::rk4(f, {z0}, 0.0, 1.0, 20);   // z0 · exp(−½) to O(h⁴)
//
// t1 < t0 integrates backwards (h < 0), which is how a flow's inverse runs.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "autograd/var.hpp"

namespace tapeflow::flows::ode {

// The state: any number of tensors of any shapes, integrated side by side.
using State = std::vector<Var>;
// The right-hand side f(y, t): returns dy/dt with one entry per state entry, of the same shapes.
using Field = std::function<State(const State& y, double t)>;

// One RK4 step from (y, t) with step h (Butcher tableau 0, ½, ½, 1 with weights 1/6, 1/3, 1/3, 1/6;
// Hairer, Nørsett & Wanner, Solving ODEs I, §II.1, eq. 1.9): local error O(h⁵).
State rk4_step(const Field& f, const State& y, double t, double h);

// y(t1) from y(t0) in `steps` equal RK4 steps: global error O(h⁴), h = (t1 − t0)/steps.
// Throws std::invalid_argument for steps = 0, a non-finite t0 or t1, an empty state, or an f that
// returns the wrong number of entries or shapes (naming the entry, its shape and the one expected).
State rk4(const Field& f, const State& y0, double t0, double t1, std::size_t steps);

// The same, keeping every intermediate state: steps + 1 states, at t0, t0 + h, …, t1.
std::vector<State> rk4_trajectory(const Field& f, const State& y0, double t0, double t1, std::size_t steps);

}  // namespace tapeflow::flows::ode
