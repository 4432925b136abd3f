#include "tutorials/common/model_comparison.hpp"

#include <algorithm>
#include <memory>

#include "flows/evaluation.hpp"
#include "nn/schedule.hpp"
#include "tutorials/common/console.hpp"

namespace tapeflow::tutorial {

flows::TrainOptions comparison_training(std::size_t steps, std::size_t batch, double lr, std::uint64_t seed) {
    const std::size_t cooldown = std::max<std::size_t>(1, steps / 5);
    return {.steps = steps,
            .batch = batch,
            .seed = seed,
            .schedule = std::make_shared<nn::LinearCooldown>(nn::ConstantSchedule(lr), steps, cooldown)};
}

ComparisonFit fit_for_comparison(flows::Flow& flow, const flows::Dataset& data, const Tensor& test,
                                 const flows::TrainOptions& options, const std::function<void()>& before_scoring) {
    ComparisonFit f{.parameters = flow.parameter_count(), .nll_before = flows::evaluate_nll(flow, test)};
    const double cpu_start = cpu_seconds();
    const flows::TrainResult r = flows::train_forward_kl(flow, data.sample, options);
    f.cpu_ms_per_step = 1e3 * (cpu_seconds() - cpu_start) / static_cast<double>(options.steps);
    f.seconds = r.seconds;
    if (before_scoring) before_scoring();
    f.nll = flows::evaluate_nll(flow, test);
    return f;
}

}  // namespace tapeflow::tutorial
