// Learning-rate schedules: pure functions of the step, lr = schedule.at(t), t = 0 for the first
// update. A schedule holds no state, so resuming from a checkpoint needs only the optimizer's
// step_count(): call `schedule.apply(optimizer)` before each `optimizer.step()`.
//
//   ConstantSchedule(lr)                 lr
//   StepDecay(lr, k, γ)                  lr·γ^⌊t / k⌋                                   (torch StepLR)
//   CosineAnnealing(lr, T, η_min)        η_min + (lr − η_min)·(1 + cos(π·min(t, T)/T))/2 (torch
//                                        CosineAnnealingLR's closed form, held at η_min after T)
//   LinearWarmup(inner, w, f₀)           inner.at(t)·(f₀ + (1 − f₀)·t/w) for t < w, inner.at(t) after
//                                        (a multiplicative ramp, like chaining torch's LinearLR)
//   LinearCooldown(inner, T, c)          inner.at(t)·min(1, (T − t)/c): the last c of T updates fall
//                                        linearly, to inner.at(T − 1)/c at the last one
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "nn/optimizer.hpp"

namespace tapeflow::nn {

class Schedule {
public:
    virtual ~Schedule() = default;
    // The learning rate for update number `step` (0-based).
    virtual double at(std::size_t step) const = 0;
    // "CosineAnnealing(lr=0.001, T=5000, eta_min=0)".
    virtual std::string name() const = 0;
    // optimizer.set_learning_rate(at(optimizer.step_count())): the rate for the next update.
    void apply(Optimizer& optimizer) const { optimizer.set_learning_rate(at(optimizer.step_count())); }
};

class ConstantSchedule : public Schedule {
public:
    // Throws std::invalid_argument unless lr is finite and ≥ 0 (as every schedule below).
    explicit ConstantSchedule(double lr);
    double at(std::size_t step) const override;
    std::string name() const override;

private:
    double lr_;
};

class StepDecay : public Schedule {
public:
    // Multiplies the rate by gamma every `step_size` updates. Throws unless step_size > 0 and
    // gamma is finite and > 0.
    StepDecay(double lr, std::size_t step_size, double gamma);
    double at(std::size_t step) const override;
    std::string name() const override;

private:
    double lr_;
    std::size_t step_size_;
    double gamma_;
};

class CosineAnnealing : public Schedule {
public:
    // From lr at t = 0 down to eta_min at t = T (and after). Throws unless T > 0 and 0 ≤ eta_min.
    CosineAnnealing(double lr, std::size_t T, double eta_min = 0.0);
    double at(std::size_t step) const override;
    std::string name() const override;

private:
    double lr_;
    std::size_t T_;
    double eta_min_;
};

class LinearWarmup : public Schedule {
public:
    // Ramps the factor linearly from start_factor at t = 0 up to 1 at t = warmup_steps, multiplying
    // the wrapped schedule (which is not shifted: after the warm-up the rate is exactly inner.at(t)).
    // Throws unless warmup_steps > 0 and start_factor ∈ [0, 1].
    template <std::derived_from<Schedule> S>
    LinearWarmup(S inner, std::size_t warmup_steps, double start_factor = 0.0)
        : LinearWarmup(std::shared_ptr<const Schedule>(std::make_shared<S>(std::move(inner))), warmup_steps,
                       start_factor) {}
    LinearWarmup(std::shared_ptr<const Schedule> inner, std::size_t warmup_steps, double start_factor = 0.0);
    double at(std::size_t step) const override;
    std::string name() const override;

private:
    std::shared_ptr<const Schedule> inner_;
    std::size_t warmup_;
    double start_factor_;
};

class LinearCooldown : public Schedule {
public:
    // Multiplies the wrapped schedule by (T − t)/c over the last c = cooldown_steps of T = total_steps
    // updates (by 1 before them, and 0 from t = T on). A constant rate keeps Adam's iterates jittering
    // around the optimum at a distance that scales with the rate; letting it fall at the end lets them
    // settle. Throws unless 0 < cooldown_steps ≤ total_steps.
    template <std::derived_from<Schedule> S>
    LinearCooldown(S inner, std::size_t total_steps, std::size_t cooldown_steps)
        : LinearCooldown(std::shared_ptr<const Schedule>(std::make_shared<S>(std::move(inner))), total_steps,
                         cooldown_steps) {}
    LinearCooldown(std::shared_ptr<const Schedule> inner, std::size_t total_steps, std::size_t cooldown_steps);
    double at(std::size_t step) const override;
    std::string name() const override;

private:
    std::shared_ptr<const Schedule> inner_;
    std::size_t total_;
    std::size_t cooldown_;
};

}  // namespace tapeflow::nn
