#include "flows/trainer.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/losses.hpp"
#include "nn/clip.hpp"
#include "nn/optimizer.hpp"

namespace tapeflow::flows {

namespace {

void require_trainable(nn::Module& flow, const TrainOptions& options, const char* who) {
    if (options.steps == 0) throw std::invalid_argument(fmt::format("{}: steps must be at least 1", who));
    if (options.batch == 0) throw std::invalid_argument(fmt::format("{}: batch must be at least 1", who));
    if (!(options.learning_rate >= 0) || !std::isfinite(options.learning_rate))
        throw std::invalid_argument(
            fmt::format("{}: learning_rate must be finite and ≥ 0, got {}", who, options.learning_rate));
    if (options.log_every == 0) throw std::invalid_argument(fmt::format("{}: log_every must be at least 1", who));
    if (options.first_step >= options.steps)
        throw std::invalid_argument(
            fmt::format("{}: first_step ({}) must be below steps ({})", who, options.first_step, options.steps));
    if (options.annealing) (void)options.annealing->beta(0);  // rejects a bad schedule before the first step
    if (options.clip_norm && !(*options.clip_norm > 0))
        throw std::invalid_argument(fmt::format("{}: clip_norm must be > 0, got {}", who, *options.clip_norm));
    if (flow.parameters().empty()) throw std::invalid_argument(fmt::format("{}: the flow has no parameters to train", who));
    if (!grad_enabled())
        throw std::invalid_argument(fmt::format("{}: called under NoGrad, so no gradient could be computed", who));
}

// A non-finite value as text: "NaN" whatever its sign bit (fmt prints "-nan" for some), else fmt's "inf".
std::string non_finite(double v) { return std::isnan(v) ? "NaN" : fmt::format("{}", v); }

// An update can overflow a parameter while its loss and gradient were finite; checked at the log
// points (a non-finite parameter makes the next loss non-finite anyway, which every step checks).
void require_finite_parameters(nn::Module& flow, const char* who, std::size_t step, double loss) {
    for (const auto& [name, p] : flow.named_parameters())
        for (double v : p->value.span())
            if (!std::isfinite(v))
                throw Diverged(fmt::format("{}: diverged at step {}: its update made parameter '{}' {} (the loss was "
                                           "{}); try a lower learning rate",
                                           who, step, name, non_finite(v), loss),
                               step);
}

// Puts a module in training mode for a scope and restores its mode afterwards.
class TrainingMode {
public:
    explicit TrainingMode(nn::Module& module) : module_(module), was_training_(module.training()) { module_.train(); }
    ~TrainingMode() { module_.train(was_training_); }
    TrainingMode(const TrainingMode&) = delete;
    TrainingMode& operator=(const TrainingMode&) = delete;

private:
    nn::Module& module_;
    bool was_training_;
};

// The loop both objectives share; loss_at(t) builds step t's loss (t = 0, 1, …) on the current tape.
template <class LossAt>
TrainResult run(nn::Module& flow, const TrainOptions& options, const char* who, LossAt&& loss_at) {
    Tape tape;
    TapeScope scope(tape);
    TrainingMode mode(flow);
    const std::vector<Parameter*> parameters = flow.parameters();
    std::optional<nn::Adam> own_adam;
    if (!options.optimizer) own_adam.emplace(parameters, nn::AdamOptions{.lr = options.learning_rate});
    nn::Optimizer& adam = options.optimizer ? *options.optimizer : *own_adam;
    std::optional<nn::Progress> progress;
    if (options.progress) {
        nn::ProgressOptions progress_options = options.progress_options;
        progress_options.initial_step = options.first_step;
        progress.emplace(options.steps, progress_options);
    }

    TrainResult result;
    result.losses.reserve((options.steps - options.first_step) / options.log_every + 1);
    double window_sum = 0;
    std::size_t window_steps = 0;
    const auto start = std::chrono::steady_clock::now();
    result.learning_rates.reserve(options.steps - options.first_step);
    for (std::size_t t = options.first_step; t < options.steps; ++t) {
        if (options.schedule) adam.set_learning_rate(options.schedule->at(t));
        result.learning_rates.push_back(adam.learning_rate());
        adam.zero_grad();
        const Var loss = loss_at(t);
        const double value = loss.item();
        // Checked before the update, so a diverging run leaves the last finite parameters behind.
        if (!std::isfinite(value))
            throw Diverged(fmt::format("{}: diverged at step {}: the loss is {}; the parameters keep their values from "
                                       "before this step (try a lower learning rate or clip_norm)",
                                       who, t + 1, non_finite(value)),
                           t + 1);
        tape.backward(loss);
        const double norm = options.clip_norm ? nn::clip_grad_norm(parameters, *options.clip_norm) : nn::grad_norm(parameters);
        if (!std::isfinite(norm))
            throw Diverged(fmt::format("{}: diverged at step {}: the gradient norm is {} (loss {}); the parameters keep "
                                       "their values from before this step",
                                       who, t + 1, non_finite(norm), value),
                           t + 1);
        adam.step();
        tape.clear();
        const bool log_point = window_steps + 1 == options.log_every || t + 1 == options.steps;
        if (log_point) require_finite_parameters(flow, who, t + 1, value);

        window_sum += value;
        ++window_steps;
        if (window_steps == options.log_every || t + 1 == options.steps) {
            const double mean_loss = window_sum / static_cast<double>(window_steps);
            result.losses.push_back(mean_loss);
            result.logged_steps.push_back(static_cast<double>(t + 1));
            if (options.on_log) options.on_log(t + 1, mean_loss);
            window_sum = 0;
            window_steps = 0;
        }
        if (progress) progress->update(t + 1, value);
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress->finish();
    return result;
}

}  // namespace

TrainResult train_forward_kl(Flow& flow, const Sampler& sampler, const TrainOptions& options) {
    require_trainable(flow, options, "train_forward_kl");
    if (!sampler) throw std::invalid_argument("train_forward_kl: the sampler is empty");
    if (options.annealing)
        throw std::invalid_argument("train_forward_kl: annealing weights an energy, so it applies to train_reverse_kl only");
    Rng rng(options.seed);
    return run(flow, options, "train_forward_kl",
               [&](std::size_t) { return forward_kl(flow, Var(sampler(options.batch, rng))); });
}

TrainResult train_forward_kl_by_step(Flow& flow, const BatchAt& batch_at, const TrainOptions& options) {
    require_trainable(flow, options, "train_forward_kl_by_step");
    if (!batch_at) throw std::invalid_argument("train_forward_kl_by_step: batch_at is empty");
    if (options.annealing)
        throw std::invalid_argument(
            "train_forward_kl_by_step: annealing weights an energy, so it applies to train_reverse_kl only");
    return run(flow, options, "train_forward_kl_by_step", [&](std::size_t t) { return forward_kl(flow, Var(batch_at(t))); });
}

namespace {

double annealed_beta(const TrainOptions& options, std::size_t t) {
    return options.annealing ? options.annealing->beta(t) : 1.0;
}

// Steps [options.first_step, options.steps) of the reverse KL, batches drawn from `batches`.
TrainResult run_reverse_kl(Flow& flow, const Energy& energy, const TrainOptions& options, Rng& batches,
                           const char* who) {
    return run(flow, options, who, [&](std::size_t t) {
        return reverse_kl(flow, energy, options.batch, annealed_beta(options, t), batches);
    });
}

}  // namespace

TrainResult train_reverse_kl(Flow& flow, const Energy& energy, const TrainOptions& options) {
    require_trainable(flow, options, "train_reverse_kl");
    if (!energy) throw std::invalid_argument("train_reverse_kl: the energy function is empty");
    Rng rng(options.seed);
    return run_reverse_kl(flow, energy, options, rng, "train_reverse_kl");
}

BestOfResult train_reverse_kl_best_of(const FlowFactory& make, const Energy& energy, const TrainOptions& options,
                                      const BestOfInits& best_of) {
    constexpr const char* who = "train_reverse_kl_best_of";
    if (!make) throw std::invalid_argument(fmt::format("{}: make is empty", who));
    if (!energy) throw std::invalid_argument(fmt::format("{}: the energy function is empty", who));
    if (best_of.inits == 0) throw std::invalid_argument(fmt::format("{}: inits must be at least 1", who));
    if (best_of.inits > 1 && (best_of.trial_steps == 0 || best_of.trial_steps >= options.steps))
        throw std::invalid_argument(fmt::format("{}: with {} inits, trial_steps must be in [1, steps = {}), got {}", who,
                                                best_of.inits, options.steps, best_of.trial_steps));
    if (best_of.selection_samples == 0) throw std::invalid_argument(fmt::format("{}: selection_samples must be at least 1", who));
    if (options.first_step != 0 || options.optimizer)
        throw std::invalid_argument(fmt::format("{}: the run starts here, so first_step and optimizer must be unset", who));

    struct Candidate {
        std::unique_ptr<Flow> flow;
        std::unique_ptr<nn::Adam> adam;
        Rng batches;
    };
    std::vector<Candidate> candidates;
    for (std::size_t i = 0; i < best_of.inits; ++i) {
        std::unique_ptr<Flow> flow = make(i);
        if (!flow) throw std::invalid_argument(fmt::format("{}: make({}) returned no flow", who, i));
        require_trainable(*flow, options, who);
        auto adam = std::make_unique<nn::Adam>(flow->parameters(), nn::AdamOptions{.lr = options.learning_rate});
        candidates.push_back({std::move(flow), std::move(adam), Rng(options.seed + i * 0x9E3779B97F4A7C15ULL)});
    }
    // Steps [first, last) of candidate c, on its own Adam and batch stream.
    auto train = [&](Candidate& c, std::size_t first, std::size_t last, const TrainOptions& shown) {
        TrainOptions o = shown;
        o.first_step = first;
        o.steps = last;
        o.optimizer = c.adam.get();
        return run_reverse_kl(*c.flow, energy, o, c.batches, who);
    };

    BestOfResult out;
    if (best_of.inits > 1) {
        out.beta = annealed_beta(options, best_of.trial_steps - 1);
        Rng selection(best_of.selection_seed);
        for (std::size_t i = 0; i < best_of.inits; ++i) {
            TrainOptions trial = options;
            trial.on_log = nullptr;
            trial.progress_options.label += fmt::format(" (init {} of {})", i + 1, best_of.inits);
            (void)train(candidates[i], 0, best_of.trial_steps, trial);
            NoGrad no_grad;
            out.objectives.push_back(
                reverse_kl(*candidates[i].flow, energy, best_of.selection_samples, out.beta, selection).item());
        }
        // The first lowest; a NaN objective (a trial that left q degenerate) is never chosen.
        for (std::size_t i = 1; i < best_of.inits; ++i)
            if (out.objectives[i] < out.objectives[out.chosen] || std::isnan(out.objectives[out.chosen])) out.chosen = i;
    }
    Candidate& chosen = candidates[out.chosen];
    if (best_of.on_chosen) best_of.on_chosen(out.chosen, *chosen.flow);
    out.result = train(chosen, best_of.inits > 1 ? best_of.trial_steps : 0, options.steps, options);
    out.flow = std::move(chosen.flow);
    return out;
}

TrainResult train_conditional_forward_kl(ConditionalFlow& flow, const ConditionalSampler& sampler,
                                        const TrainOptions& options) {
    require_trainable(flow, options, "train_conditional_forward_kl");
    if (!sampler) throw std::invalid_argument("train_conditional_forward_kl: the sampler is empty");
    if (options.annealing)
        throw std::invalid_argument(
            "train_conditional_forward_kl: annealing weights an energy, so it applies to train_reverse_kl only");
    Rng rng(options.seed);
    return run(flow, options, "train_conditional_forward_kl", [&](std::size_t) {
        const ContextBatch b = sampler(options.batch, rng);
        return -mean(flow.log_prob(Var(b.x), Var(b.context)));
    });
}

}  // namespace tapeflow::flows
