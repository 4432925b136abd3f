#include "flows/losses.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"

namespace tapeflow::flows {

Var forward_kl(Flow& flow, const Var& x) {
    require_batch(x, flow.dim(), "forward_kl");
    return -mean(flow.log_prob(x));
}

Var reverse_kl(Flow& flow, const Energy& energy, std::size_t n, double beta, Rng& rng) {
    if (n == 0) throw std::invalid_argument("reverse_kl: the number of samples n must be at least 1");
    if (!std::isfinite(beta)) throw std::invalid_argument(fmt::format("reverse_kl: β must be finite, got {}", beta));
    if (!energy) throw std::invalid_argument("reverse_kl: the energy function is empty");
    const FlowSample s = flow.sample_and_log_prob(n, rng);
    const Var u = energy(s.value);
    if (!(u.shape() == Shape{n}))
        throw std::invalid_argument(
            fmt::format("reverse_kl: the energy must return one value per sample, shape [{}], got {}", n, u.shape()));
    return mean(s.log_prob + beta * u);
}

double AnnealingSchedule::beta(std::size_t step) const {
    if (!(beta_start > 0 && beta_start <= 1))
        throw std::invalid_argument(fmt::format("AnnealingSchedule: beta_start must be in (0, 1], got {}", beta_start));
    if (warmup_steps == 0) throw std::invalid_argument("AnnealingSchedule: warmup_steps must be at least 1");
    return std::min(1.0, beta_start + static_cast<double>(step) / static_cast<double>(warmup_steps));
}

double annealing_beta(std::size_t step, const AnnealingSchedule& schedule) { return schedule.beta(step); }

}  // namespace tapeflow::flows
