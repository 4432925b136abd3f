// Training loops for any Flow, one per objective (docs/theory.md §2): maximum likelihood on fresh batches
// of data (forward KL) and the variational fit of an energy (reverse KL), each with Adam, optional
// gradient clipping, the annealing schedule of Rezende & Mohamed, and a progress display.
//
//     Flow flow(std::make_unique<StandardNormal>(2), std::move(layers));
//     TrainResult r = train_forward_kl(flow, [](std::size_t n, Rng& rng) { return sample_moons(n, rng); },
//                                      {.steps = 5000, .batch = 512, .progress = true});
//     double nll = evaluate_nll(flow, sample_moons(10000, test_rng));
//
// Each step: zero the gradients, draw a batch, build the loss, backward, clip, Adam step, clear the
// tape. The loop records on a tape of its own (the caller's tape and Vars are left alone) and keeps
// the losses as plain doubles. The evaluation helpers (evaluate_reverse_kl, evaluate_nll,
// density_grid) come with this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flows/conditional.hpp"
#include "flows/datasets.hpp"    // Sampler
#include "flows/evaluation.hpp"  // evaluate_reverse_kl, evaluate_nll, density_grid
#include "flows/flow.hpp"
#include "flows/losses.hpp"  // AnnealingSchedule
#include "flows/targets.hpp"  // Energy
#include "nn/optimizer.hpp"
#include "nn/progress.hpp"
#include "nn/schedule.hpp"

namespace tapeflow::flows {

struct TrainOptions {
    std::size_t steps = 1000;
    std::size_t batch = 256;
    double learning_rate = 1e-3;  // Adam's, with its other settings at PyTorch's defaults
    std::uint64_t seed = 0;       // of the Rng that draws every batch (data or base samples)
    // When set, Adam's rate at step t = 0, 1, … is schedule->at(t) and learning_rate is not used:
    //     .schedule = std::make_shared<nn::LinearCooldown>(nn::ConstantSchedule(1e-3), steps, steps / 5)
    std::shared_ptr<const nn::Schedule> schedule;
    // TrainResult::losses holds the mean loss of each run of `log_every` consecutive steps
    // (1: every step's loss), plus the mean of a shorter last run if steps is not a multiple.
    std::size_t log_every = 1;
    // Called after each such run with the number of steps done and the run's mean loss
    // (to print an evaluation or save a snapshot along the way).
    std::function<void(std::size_t step, double mean_loss)> on_log;
    bool progress = false;  // show an nn::Progress line (label, stream and mode below)
    nn::ProgressOptions progress_options{};
    // Reverse KL only: when set, the energy is weighted by the schedule's β_t at step t = 0, 1, …
    // (losses.hpp) instead of 1, and the loss recorded is the one at β_t.
    std::optional<AnnealingSchedule> annealing;
    // When set, the gradients are rescaled to this total norm when it is larger (nn::clip_grad_norm).
    std::optional<double> clip_norm;
    // Resuming a run: the loop takes steps t = first_step, …, steps − 1 (the schedule, the annealing
    // and on_log count from 0 as in an uninterrupted run; TrainResult holds only this run's steps),
    // and, when `optimizer` is set, steps that optimizer (whose moments and step count a checkpoint
    // restored; it must hold the flow's parameters) instead of a fresh Adam at learning_rate.
    std::size_t first_step = 0;
    nn::Optimizer* optimizer = nullptr;
};

// Thrown when training diverges: the loss or the gradient norm is NaN or infinite at a step (checked
// before that step's update, so the parameters keep their values from before it), or an update made a
// parameter non-finite (checked before each on_log call and at the end, so on_log never sees a
// diverged model: a checkpoint saved from on_log stays the last good one). The message starts
// "<who>: diverged at step N: " and names the loss, the norm or the parameter.
class Diverged : public std::runtime_error {
public:
    Diverged(const std::string& what, std::size_t step) : std::runtime_error(what), step_(step) {}
    std::size_t step() const { return step_; }  // 1-based, as on_log counts

private:
    std::size_t step_;
};

struct TrainResult {
    std::vector<double> losses;  // see TrainOptions::log_every
    std::vector<double> logged_steps;  // the step each entry of `losses` ends at (log_every, 2·log_every, …, steps)
    std::vector<double> learning_rates;  // the rate of each step, as Adam used it
    double seconds = 0;                  // wall-clock time of the loop
};

// Maximum likelihood: each step draws a fresh batch x = sampler(batch, rng) and minimizes
// forward_kl(flow, x) = −mean log p(x). The flow is in training mode during the loop and gets its
// previous mode back afterwards.
// Throws std::invalid_argument for steps, batch or log_every = 0, a negative or non-finite learning
// rate, a clip norm not > 0, an empty sampler, a flow without parameters, annealing (it has no
// meaning here), or a call under NoGrad; Diverged (a std::runtime_error) naming the step when the run
// diverges (see Diverged).
TrainResult train_forward_kl(Flow& flow, const Sampler& sampler, const TrainOptions& options = {});

// Variational fit of p ∝ exp(−U): each step minimizes reverse_kl(flow, energy, batch, β, rng) =
// mean[log q(x) + β U(x)] over x = f(z), z ~ p_z, with β = 1 or the annealed β_t. Same errors as
// train_forward_kl (annealing allowed), with an empty energy instead of an empty sampler.
TrainResult train_reverse_kl(Flow& flow, const Energy& energy, const TrainOptions& options = {});

// Best of a few initializations, chosen by the objective. The reverse KL has local optima that depend
// on where the flow starts (a band of U3 folded onto the other, a mode of U4 missed), and the usual
// remedy is to restart from a few initializations and keep the best: here `inits` flows,
// make(0), make(1), …, are each trained for the first `trial_steps` steps of the run in `options` (the
// same schedule, annealing and step numbers as an uninterrupted run), each one's objective
//     mean[log q(x) + β U(x)],  x ~ q,  β the annealing's β at the last trial step (1 without annealing),
// is estimated on `selection_samples` fresh samples, and the lowest continues, with its own Adam moments
// and batch stream, to options.steps. The choice uses the training objective only, never an evaluation
// held against the target. Init i draws its batches from Rng(options.seed + i·0x9E3779B97F4A7C15), so init
// 0 sees the batches of train_reverse_kl(make(0), energy, options), and when it is chosen its run is
// that run step for step.
struct BestOfInits {
    std::size_t inits = 1;               // ≥ 1; 1: no trials, the plain run of make(0)
    std::size_t trial_steps = 0;         // ≥ 1 and < options.steps when inits > 1
    std::size_t selection_samples = 10000;
    std::uint64_t selection_seed = 0;    // of the Rng that draws the selection samples
    // Called once the choice is made, before the chosen flow's remaining steps (on_log and the progress
    // display of `options` see only those steps; the trials show a progress line of their own).
    std::function<void(std::size_t chosen, Flow& flow)> on_chosen;
};

using FlowFactory = std::function<std::unique_ptr<Flow>(std::size_t init)>;

struct BestOfResult {
    std::unique_ptr<Flow> flow;     // the chosen init, trained for options.steps
    std::size_t chosen = 0;
    std::vector<double> objectives;  // each init's estimated objective after its trial (empty with 1 init)
    double beta = 1;                 // the β of that objective
    TrainResult result;              // the chosen run's steps after the trial (all of them with 1 init)
};

// Throws std::invalid_argument for inits = 0, trial_steps = 0 or ≥ options.steps with inits > 1,
// selection_samples = 0, options.first_step or options.optimizer set (the run starts here), an empty
// make or a make that returns no flow; and as train_reverse_kl.
BestOfResult train_reverse_kl_best_of(const FlowFactory& make, const Energy& energy, const TrainOptions& options,
                                      const BestOfInits& best_of);

// Maximum likelihood on batches that depend on the step alone: step t (0-based, as in
// TrainOptions::first_step) minimizes forward_kl(flow, batch_at(t)). A resumed run then sees exactly
// the batches of an uninterrupted one without any generator state in its checkpoint. Same errors as
// train_forward_kl, with an empty batch_at instead of an empty sampler.
using BatchAt = std::function<Tensor(std::size_t step)>;
TrainResult train_forward_kl_by_step(Flow& flow, const BatchAt& batch_at, const TrainOptions& options = {});

// A batch of data with its contexts: x [n, D] and c [n, C], row i of c the context of row i of x.
struct ContextBatch {
    Tensor x;
    Tensor context;
};
using ConditionalSampler = std::function<ContextBatch(std::size_t n, Rng& rng)>;

// Maximum likelihood for a conditional flow: each step draws (x, c) = sampler(batch, rng) and
// minimizes −mean log p(x | c). Same options and errors as train_forward_kl.
TrainResult train_conditional_forward_kl(ConditionalFlow& flow, const ConditionalSampler& sampler,
                                        const TrainOptions& options = {});

}  // namespace tapeflow::flows
