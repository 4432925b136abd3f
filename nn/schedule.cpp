#include "nn/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

double checked_lr(double lr, const char* who) {
    if (!(lr >= 0) || !std::isfinite(lr))
        throw std::invalid_argument(fmt::format("{}: lr must be finite and ≥ 0, got {}", who, lr));
    return lr;
}

}  // namespace

ConstantSchedule::ConstantSchedule(double lr) : lr_(checked_lr(lr, "ConstantSchedule")) {}

double ConstantSchedule::at(std::size_t) const { return lr_; }

std::string ConstantSchedule::name() const { return fmt::format("ConstantSchedule(lr={:g})", lr_); }

StepDecay::StepDecay(double lr, std::size_t step_size, double gamma)
    : lr_(checked_lr(lr, "StepDecay")), step_size_(step_size), gamma_(gamma) {
    if (step_size == 0) throw std::invalid_argument("StepDecay: step_size must be > 0, got 0");
    if (!(gamma > 0) || !std::isfinite(gamma))
        throw std::invalid_argument(fmt::format("StepDecay: gamma must be finite and > 0, got {}", gamma));
}

double StepDecay::at(std::size_t step) const {
    return lr_ * std::pow(gamma_, static_cast<double>(step / step_size_));
}

std::string StepDecay::name() const {
    return fmt::format("StepDecay(lr={:g}, step_size={}, gamma={:g})", lr_, step_size_, gamma_);
}

CosineAnnealing::CosineAnnealing(double lr, std::size_t T, double eta_min)
    : lr_(checked_lr(lr, "CosineAnnealing")), T_(T), eta_min_(eta_min) {
    if (T == 0) throw std::invalid_argument("CosineAnnealing: T must be > 0, got 0");
    if (!(eta_min >= 0) || !std::isfinite(eta_min))
        throw std::invalid_argument(fmt::format("CosineAnnealing: eta_min must be finite and ≥ 0, got {}", eta_min));
}

double CosineAnnealing::at(std::size_t step) const {
    // Loshchilov & Hutter 2017 (SGDR), eq. 5, for a single cycle.
    const double progress = static_cast<double>(std::min(step, T_)) / static_cast<double>(T_);
    return eta_min_ + (lr_ - eta_min_) * (1 + std::cos(std::numbers::pi * progress)) / 2;
}

std::string CosineAnnealing::name() const {
    return fmt::format("CosineAnnealing(lr={:g}, T={}, eta_min={:g})", lr_, T_, eta_min_);
}

LinearWarmup::LinearWarmup(std::shared_ptr<const Schedule> inner, std::size_t warmup_steps, double start_factor)
    : inner_(std::move(inner)), warmup_(warmup_steps), start_factor_(start_factor) {
    if (!inner_) throw std::invalid_argument("LinearWarmup: the wrapped schedule is null");
    if (warmup_steps == 0) throw std::invalid_argument("LinearWarmup: warmup_steps must be > 0, got 0");
    if (!(start_factor >= 0 && start_factor <= 1))
        throw std::invalid_argument(fmt::format("LinearWarmup: start_factor must be in [0, 1], got {}", start_factor));
}

double LinearWarmup::at(std::size_t step) const {
    if (step >= warmup_) return inner_->at(step);
    const double factor =
        start_factor_ + (1 - start_factor_) * static_cast<double>(step) / static_cast<double>(warmup_);
    return inner_->at(step) * factor;
}

std::string LinearWarmup::name() const {
    return fmt::format("LinearWarmup({}, warmup_steps={}, start_factor={:g})", inner_->name(), warmup_,
                       start_factor_);
}

LinearCooldown::LinearCooldown(std::shared_ptr<const Schedule> inner, std::size_t total_steps, std::size_t cooldown_steps)
    : inner_(std::move(inner)), total_(total_steps), cooldown_(cooldown_steps) {
    if (!inner_) throw std::invalid_argument("LinearCooldown: the wrapped schedule is null");
    if (cooldown_steps == 0 || cooldown_steps > total_steps)
        throw std::invalid_argument(fmt::format(
            "LinearCooldown: cooldown_steps must be in [1, total_steps = {}], got {}", total_steps, cooldown_steps));
}

double LinearCooldown::at(std::size_t step) const {
    if (step >= total_) return 0.0;
    const std::size_t left = total_ - step;
    if (left >= cooldown_) return inner_->at(step);
    return inner_->at(step) * static_cast<double>(left) / static_cast<double>(cooldown_);
}

std::string LinearCooldown::name() const {
    return fmt::format("LinearCooldown({}, total_steps={}, cooldown_steps={})", inner_->name(), total_, cooldown_);
}

}  // namespace tapeflow::nn
