// How tutorials 11 and 12 put flows side by side on the same 2-D data: every model trains by maximum
// likelihood for the same steps on the same stream of batches, at the same schedule, and is scored by
// its test NLL before and after, with its training cost in CPU time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "flows/datasets.hpp"
#include "flows/flow.hpp"
#include "flows/trainer.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::tutorial {

// Adam at the constant rate `lr`, falling linearly to 0 over the last fifth of the steps
// (nn::LinearCooldown: the iterates settle instead of jittering around the optimum), batches of
// `batch` drawn from `seed`'s stream.
flows::TrainOptions comparison_training(std::size_t steps, std::size_t batch, double lr, std::uint64_t seed);

struct ComparisonFit {
    std::size_t parameters = 0;
    double nll_before = 0, nll = 0;  // test NLL in nats (flows::evaluate_nll), before and after training
    double seconds = 0;              // wall time of the training loop
    double cpu_ms_per_step = 0;      // CPU time of the training loop over its steps
};

// Trains `flow` on data.sample with `options` and scores it on `test` [N, 2]. `before_scoring`, when
// given, runs between training and the final score (e.g. to switch a CNF to its exact trace, so the
// test NLL is a number, not an estimate).
ComparisonFit fit_for_comparison(flows::Flow& flow, const flows::Dataset& data, const Tensor& test,
                                 const flows::TrainOptions& options, const std::function<void()>& before_scoring = {});

}  // namespace tapeflow::tutorial
