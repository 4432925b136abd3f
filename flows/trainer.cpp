#include "flows/trainer.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "flows/losses.hpp"
#include "nn/clip.hpp"
#include "nn/optimizer.hpp"

namespace tapeflow::flows {

namespace {

void require_trainable(Flow& flow, const TrainOptions& options, const char* who) {
    if (options.steps == 0) throw std::invalid_argument(fmt::format("{}: steps must be at least 1", who));
    if (options.batch == 0) throw std::invalid_argument(fmt::format("{}: batch must be at least 1", who));
    if (!(options.learning_rate >= 0) || !std::isfinite(options.learning_rate))
        throw std::invalid_argument(
            fmt::format("{}: learning_rate must be finite and ≥ 0, got {}", who, options.learning_rate));
    if (options.log_every == 0) throw std::invalid_argument(fmt::format("{}: log_every must be at least 1", who));
    if (options.annealing) (void)options.annealing->beta(0);  // rejects a bad schedule before the first step
    if (options.clip_norm && !(*options.clip_norm > 0))
        throw std::invalid_argument(fmt::format("{}: clip_norm must be > 0, got {}", who, *options.clip_norm));
    if (flow.parameters().empty()) throw std::invalid_argument(fmt::format("{}: the flow has no parameters to train", who));
    if (!grad_enabled())
        throw std::invalid_argument(fmt::format("{}: called under NoGrad, so no gradient could be computed", who));
}

// A non-finite value as text: "NaN" whatever its sign bit (fmt prints "-nan" for some), else fmt's "inf".
std::string non_finite(double v) { return std::isnan(v) ? "NaN" : fmt::format("{}", v); }

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
TrainResult run(Flow& flow, const TrainOptions& options, const char* who, LossAt&& loss_at) {
    Tape tape;
    TapeScope scope(tape);
    TrainingMode mode(flow);
    const std::vector<Parameter*> parameters = flow.parameters();
    nn::Adam adam(parameters, {.lr = options.learning_rate});
    std::optional<nn::Progress> progress;
    if (options.progress) progress.emplace(options.steps, options.progress_options);

    TrainResult result;
    result.losses.reserve(options.steps / options.log_every + 1);
    double window_sum = 0;
    std::size_t window_steps = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t t = 0; t < options.steps; ++t) {
        adam.zero_grad();
        const Var loss = loss_at(t);
        const double value = loss.item();
        // Checked before the update, so a diverging run leaves the last finite parameters behind.
        if (!std::isfinite(value))
            throw std::runtime_error(fmt::format("{}: the loss is {} at step {}; try a lower learning rate or clip_norm",
                                                 who, non_finite(value), t + 1));
        tape.backward(loss);
        const double norm = options.clip_norm ? nn::clip_grad_norm(parameters, *options.clip_norm) : nn::grad_norm(parameters);
        if (!std::isfinite(norm))
            throw std::runtime_error(
                fmt::format("{}: the gradient norm is {} at step {} (loss {})", who, non_finite(norm), t + 1, value));
        adam.step();
        tape.clear();

        window_sum += value;
        ++window_steps;
        if (window_steps == options.log_every || t + 1 == options.steps) {
            const double mean_loss = window_sum / static_cast<double>(window_steps);
            result.losses.push_back(mean_loss);
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

TrainResult train_reverse_kl(Flow& flow, const Energy& energy, const TrainOptions& options) {
    require_trainable(flow, options, "train_reverse_kl");
    if (!energy) throw std::invalid_argument("train_reverse_kl: the energy function is empty");
    Rng rng(options.seed);
    return run(flow, options, "train_reverse_kl", [&](std::size_t t) {
        const double beta = options.annealing ? options.annealing->beta(t) : 1.0;
        return reverse_kl(flow, energy, options.batch, beta, rng);
    });
}

}  // namespace tapeflow::flows
