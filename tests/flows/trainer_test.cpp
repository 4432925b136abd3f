// The training loops, on the smallest flow that can fit a Gaussian: N(0, I) pushed through an
// elementwise affine map. Maximum likelihood and the reverse KL must each recover μ and σ; with a zero
// learning rate the recorded losses must be exactly the losses.hpp objectives on the same batches.
#include "flows/trainer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/autoregressive.hpp"
#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "flows/losses.hpp"
#include "nn/optimizer.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/format.hpp"
#include "tensor/reduce.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

namespace {

constexpr double pi = std::numbers::pi;

// x = loc + exp(log_scale) ⊙ z, z ~ N(0, I₂).
struct AffineFlow {
    Flow flow{std::make_unique<StandardNormal>(2)};
    Affine* affine = nullptr;
    AffineFlow() {
        auto layer = std::make_unique<Affine>(2);
        affine = layer.get();
        flow.add(std::move(layer));
    }
    Tensor loc() const { return affine->loc().value; }
    Tensor scale() const { return exp(affine->log_scale().value); }
};

const Tensor mu{1.0, -2.0};
const Tensor sigma{0.5, 2.0};

// N(μ, diag σ²) data, and its energy U(x) = ½ Σ_d ((x_d − μ_d)/σ_d)² (log Z = log 2π + Σ log σ_d).
Tensor gaussian_data(std::size_t n, Rng& rng) { return randn(Shape{n, 2}, rng) * sigma + mu; }
Var gaussian_energy(const Var& x) { return 0.5 * sum(square((x - Var(mu)) / Var(sigma)), 1); }
const double gaussian_log_z = std::log(2 * pi) + std::log(0.5 * 2.0);

double mean_of(const std::vector<double>& v, std::size_t from, std::size_t to) {
    double s = 0;
    for (std::size_t i = from; i < to; ++i) s += v[i];
    return s / static_cast<double>(to - from);
}

}  // namespace

TEST_CASE("train_forward_kl recovers the mean and scale of Gaussian data") {
    AffineFlow m;
    const TrainResult r = train_forward_kl(m.flow, gaussian_data, {.steps = 600, .batch = 256, .learning_rate = 0.02});
    REQUIRE(r.losses.size() == 600);
    CHECK(r.seconds > 0);
    CAPTURE(to_string(m.loc()));
    CAPTURE(to_string(m.scale()));
    for (std::size_t d = 0; d < 2; ++d) {
        CHECK(std::abs(m.loc()[d] - mu[d]) <= 0.1 * sigma[d]);
        CHECK(std::abs(m.scale()[d] / sigma[d] - 1) <= 0.05);
    }
    // The loss falls from the NLL of the data under N(0, I) to the data's entropy,
    // H = log 2πe + Σ log σ_d = 2.8379.
    const double entropy = std::log(2 * pi * std::numbers::e) + std::log(0.5 * 2.0);
    CHECK(mean_of(r.losses, 0, 10) > entropy + 1);
    CHECK(std::abs(mean_of(r.losses, 500, 600) - entropy) <= 0.02);
    Rng test(99);
    CHECK(std::abs(evaluate_nll(m.flow, gaussian_data(20000, test)) - entropy) <= 0.02);
}

TEST_CASE("train_reverse_kl recovers a Gaussian target, where the loss reaches −log Z") {
    AffineFlow m;
    const TrainResult r =
        train_reverse_kl(m.flow, gaussian_energy, {.steps = 1000, .batch = 256, .learning_rate = 0.01});
    CAPTURE(to_string(m.loc()));
    CAPTURE(to_string(m.scale()));
    // The loss has no variance left at q = p (log q + U = −log Z for every sample), but its gradient
    // does (the score term), so Adam at a constant rate keeps jittering around the optimum.
    for (std::size_t d = 0; d < 2; ++d) {
        CHECK(std::abs(m.loc()[d] - mu[d]) <= 0.05 * sigma[d]);
        CHECK(std::abs(m.scale()[d] / sigma[d] - 1) <= 0.03);
    }
    CHECK(r.losses.front() > -gaussian_log_z + 1);
    CHECK(std::abs(r.losses.back() + gaussian_log_z) <= 5e-3);
    Rng rng(5);
    const ReverseKLEvaluation e = evaluate_reverse_kl(m.flow, gaussian_energy, 20000, rng, 12.0);
    CHECK(std::abs(e.log_z_box - gaussian_log_z) <= 1e-6);  // the box misses 3e-7 of the mass (5σ₂)
    CHECK(e.kl_box >= 0);
    CHECK(e.kl_box <= 3e-3);
}

TEST_CASE("with a zero learning rate the losses are exactly the objectives on the seeded batches") {
    SUBCASE("reverse KL, annealed: β_t = min(1, 0.01 + t/10000) at step t = 0, 1, …") {
        AffineFlow m;
        const TrainResult r =
            train_reverse_kl(m.flow, gaussian_energy, {.steps = 5, .batch = 16, .learning_rate = 0.0, .seed = 3, .annealing = AnnealingSchedule{}});
        Rng rng(3);
        REQUIRE(r.losses.size() == 5);
        for (std::size_t t = 0; t < 5; ++t) {
            Tape tape;
            TapeScope scope(tape);
            CHECK(r.losses[t] == reverse_kl(m.flow, gaussian_energy, 16, 0.01 + static_cast<double>(t) / 10000, rng).item());
        }
    }
    SUBCASE("forward KL on fresh batches from the sampler") {
        AffineFlow m;
        const TrainResult r = train_forward_kl(m.flow, gaussian_data, {.steps = 4, .batch = 8, .learning_rate = 0.0, .seed = 5});
        Rng rng(5);
        REQUIRE(r.losses.size() == 4);
        for (std::size_t t = 0; t < 4; ++t) {
            Tape tape;
            TapeScope scope(tape);
            CHECK(r.losses[t] == forward_kl(m.flow, Var(gaussian_data(8, rng))).item());
        }
    }
}

TEST_CASE("log_every averages runs of steps, including a shorter last run, records where each ends, and calls on_log") {
    AffineFlow m;
    std::vector<std::size_t> logged_steps;
    std::vector<double> logged_losses;
    const TrainResult every = train_reverse_kl(m.flow, gaussian_energy, {.steps = 7, .batch = 8, .learning_rate = 0.0});
    const TrainResult r = train_reverse_kl(m.flow, gaussian_energy,
                                           {.steps = 7, .batch = 8, .learning_rate = 0.0, .log_every = 3,
                                            .on_log = [&](std::size_t step, double loss) {
                                                logged_steps.push_back(step);
                                                logged_losses.push_back(loss);
                                            }});
    REQUIRE(r.losses.size() == 3);
    CHECK(std::abs(r.losses[0] - mean_of(every.losses, 0, 3)) <= 1e-14);
    CHECK(std::abs(r.losses[1] - mean_of(every.losses, 3, 6)) <= 1e-14);
    CHECK(r.losses[2] == every.losses[6]);
    CHECK(logged_steps == std::vector<std::size_t>{3, 6, 7});
    CHECK(logged_losses == r.losses);
    CHECK(r.logged_steps == std::vector<double>{3, 6, 7});
    CHECK(every.logged_steps == std::vector<double>{1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("with a schedule, Adam's rate at step t is schedule.at(t): the loop equals one written by hand") {
    const std::size_t steps = 30;
    const auto schedule = std::make_shared<nn::LinearCooldown>(
        nn::LinearWarmup(nn::CosineAnnealing(0.05, steps), 5), steps, 10);
    AffineFlow trained;
    const TrainResult r =
        train_forward_kl(trained.flow, gaussian_data, {.steps = steps, .batch = 16, .seed = 4, .schedule = schedule});
    REQUIRE(r.learning_rates.size() == steps);
    for (std::size_t t = 0; t < steps; ++t) CHECK(r.learning_rates[t] == schedule->at(t));
    CHECK(r.learning_rates[0] == 0.0);  // the warm-up starts from 0
    CHECK(r.learning_rates[steps - 1] == schedule->at(steps - 1));

    // The same steps by hand: Adam with the scheduled rate, the NLL on the same seeded batches.
    AffineFlow by_hand;
    {
        Tape tape;
        TapeScope scope(tape);
        nn::Adam adam(by_hand.flow.parameters(), {.lr = 1.0});
        Rng rng(4);
        for (std::size_t t = 0; t < steps; ++t) {
            schedule->apply(adam);
            adam.zero_grad();
            const Var loss = forward_kl(by_hand.flow, Var(gaussian_data(16, rng)));
            CHECK(loss.item() == r.losses[t]);
            tape.backward(loss);
            adam.step();
            tape.clear();
        }
    }
    CHECK(equal(trained.loc(), by_hand.loc()));
    CHECK(equal(trained.scale(), by_hand.scale()));

    // Without a schedule every step uses learning_rate.
    AffineFlow constant;
    const TrainResult c = train_forward_kl(constant.flow, gaussian_data, {.steps = 3, .learning_rate = 0.02});
    CHECK(c.learning_rates == std::vector<double>{0.02, 0.02, 0.02});
}

TEST_CASE("a warm-up from 0 leaves the parameters unchanged by the first step") {
    AffineFlow m;
    const Tensor loc = m.loc().clone();
    train_forward_kl(m.flow, gaussian_data,
                     {.steps = 1, .schedule = std::make_shared<nn::LinearWarmup>(nn::ConstantSchedule(0.1), 10)});
    CHECK(equal(m.loc(), loc));
}

TEST_CASE("train_conditional_forward_kl fits a family x | c ~ N(2c·1, 0.5² I) with one conditional MAF") {
    Rng init(6);
    ConditionalFlow flow(std::make_unique<StandardNormal>(2), 1);
    flow.add(std::make_unique<MAF>(2, init, AutoregressiveOptions{.hidden = {16}, .context_dim = 1}));
    const ConditionalSampler family = [](std::size_t n, Rng& rng) {
        const Tensor c = rand(Shape{n, 1}, rng, -1.0, 1.0);
        return ContextBatch{randn(Shape{n, 2}, rng) * 0.5 + c * 2.0, c};
    };
    const TrainResult r = train_conditional_forward_kl(flow, family, {.steps = 600, .batch = 128, .learning_rate = 1e-2});
    REQUIRE(r.losses.size() == 600);
    CHECK_THROWS_WITH_AS(train_conditional_forward_kl(flow, ConditionalSampler(), {}), doctest::Contains("sampler is empty"),
                         std::invalid_argument);
    // The test NLL at two contexts is the entropy of N(·, 0.25 I₂), log(2πe · 0.25).
    const double entropy = std::log(2 * pi * std::exp(1.0) * 0.25);
    Rng test(7);
    NoGrad no_grad;
    for (const double c : {-0.8, 0.5}) {
        CAPTURE(c);
        const Tensor x = randn(Shape{4000, 2}, test) * 0.5 + 2 * c;
        const double nll = -tapeflow::mean(flow.log_prob(Var(x), Var(Tensor::full(Shape{4000, 1}, c))).value()).item();
        CHECK(std::abs(nll - entropy) <= 0.05);
    }
}

TEST_CASE("training is deterministic for a seed") {
    AffineFlow a, b, c;
    const TrainOptions options{.steps = 20, .batch = 32, .learning_rate = 0.05, .seed = 11};
    const TrainResult ra = train_forward_kl(a.flow, gaussian_data, options);
    const TrainResult rb = train_forward_kl(b.flow, gaussian_data, options);
    CHECK(ra.losses == rb.losses);
    CHECK(equal(a.loc(), b.loc()));
    CHECK(equal(a.scale(), b.scale()));
    TrainOptions other = options;
    other.seed = 12;
    CHECK(train_forward_kl(c.flow, gaussian_data, other).losses != ra.losses);
}

TEST_CASE("clip_norm rescales the gradients before the Adam step") {
    // Adam's step is ~lr whatever the gradient's size, unless the gradient is tiny next to ε = 1e-8:
    // clipped to a norm of 1e-12, each step moves a parameter by only ~lr·1e-4.
    AffineFlow free, clipped;
    TrainOptions options{.steps = 20, .batch = 32, .learning_rate = 0.1};
    train_forward_kl(free.flow, gaussian_data, options);
    options.clip_norm = 1e-12;
    train_forward_kl(clipped.flow, gaussian_data, options);
    CHECK(std::abs(free.loc()[0]) > 0.5);
    CHECK(std::abs(clipped.loc()[0]) < 1e-3);
    CHECK(std::abs(clipped.loc()[0]) > 0);
}

TEST_CASE("a NaN loss or gradient stops training with the step, before the parameters change") {
    AffineFlow m;
    int calls = 0;
    const Energy nan_at_third_call = [&](const Var& x) {
        return ++calls == 3 ? gaussian_energy(x) * std::nan("") : gaussian_energy(x);
    };
    try {
        train_reverse_kl(m.flow, nan_at_third_call, {.steps = 10, .batch = 8, .learning_rate = 0.1});
        FAIL("no exception");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("train_reverse_kl: diverged at step 3: the loss is NaN") != std::string::npos);
    }
    // A finite loss with an infinite derivative: d√u/du = ∞ at u = 0.
    AffineFlow g;
    const Tensor loc_before = g.loc().clone();
    const Energy infinite_slope = [](const Var& x) { return sqrt(sum(square(x - x), 1)); };
    CHECK_THROWS_WITH_AS(train_reverse_kl(g.flow, infinite_slope, {.steps = 3, .batch = 8}),
                         doctest::Contains("train_reverse_kl: diverged at step 1: the gradient norm is NaN"), std::runtime_error);
    CHECK(equal(g.loc(), loc_before));
}

TEST_CASE("the trainer validates its options and arguments") {
    AffineFlow m;
    const auto forward = [&](const TrainOptions& o) { return train_forward_kl(m.flow, gaussian_data, o); };
    CHECK_THROWS_WITH_AS(forward({.steps = 0}), doctest::Contains("train_forward_kl: steps must be at least 1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(forward({.batch = 0}), doctest::Contains("batch must be at least 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(forward({.log_every = 0}), doctest::Contains("log_every"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(forward({.clip_norm = 0.0}), doctest::Contains("clip_norm must be > 0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(forward({.annealing = AnnealingSchedule{}}), doctest::Contains("applies to train_reverse_kl only"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(forward({.learning_rate = -1.0}), doctest::Contains("learning_rate must be finite and ≥ 0, got -1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_forward_kl(m.flow, Sampler{}), doctest::Contains("the sampler is empty"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl(m.flow, Energy{}), doctest::Contains("the energy function is empty"),
                         std::invalid_argument);
    const Sampler three_d = [](std::size_t n, Rng& rng) { return randn(Shape{n, 3}, rng); };
    CHECK_THROWS_WITH_AS(train_forward_kl(m.flow, three_d), doctest::Contains("D = 2"), std::invalid_argument);
    Flow fixed(std::make_unique<StandardNormal>(2));
    CHECK_THROWS_WITH_AS(train_reverse_kl(fixed, gaussian_energy), doctest::Contains("the flow has no parameters"),
                         std::invalid_argument);
    NoGrad no_grad;
    CHECK_THROWS_WITH_AS(train_reverse_kl(m.flow, gaussian_energy), doctest::Contains("called under NoGrad"),
                         std::invalid_argument);
}

TEST_CASE("the flow trains in training mode and gets its mode back; the caller's tape is untouched") {
    AffineFlow m;
    m.flow.eval();
    bool trained_in_training_mode = true;
    const Sampler watch = [&](std::size_t n, Rng& rng) {
        trained_in_training_mode = trained_in_training_mode && m.flow.training();
        return gaussian_data(n, rng);
    };
    Tape& tape = Tape::current();
    const Var mine = tape.variable(Tensor{1.0, 2.0});
    const std::size_t size = tape.size();
    train_forward_kl(m.flow, watch, {.steps = 3, .batch = 4});
    CHECK(trained_in_training_mode);
    CHECK_FALSE(m.flow.training());
    CHECK(tape.size() == size);
    tape.backward(sum(square(mine)));  // still valid: the loop recorded on a tape of its own
    CHECK(equal(mine.grad(), Tensor{2.0, 4.0}));
    tape.clear();
}

TEST_CASE("progress prints a labelled status and a summary") {
    AffineFlow m;
    std::FILE* out = std::tmpfile();
    REQUIRE(out != nullptr);
    TrainOptions options{.steps = 20, .batch = 8, .progress = true};
    options.progress_options.label = "affine fit";
    options.progress_options.out = out;
    options.progress_options.mode = nn::ProgressMode::plain;
    train_reverse_kl(m.flow, gaussian_energy, options);
    std::rewind(out);
    std::string text;
    for (int c; (c = std::fgetc(out)) != EOF;) text.push_back(static_cast<char>(c));
    std::fclose(out);
    CHECK(text.find("affine fit") != std::string::npos);
    CHECK(text.find("20/20") != std::string::npos);
    CHECK(text.find("done") != std::string::npos);
}

TEST_CASE("a run resumed at first_step with its optimizer equals the uninterrupted run bit for bit") {
    const auto batch_at = [](std::size_t t) {
        Rng rng(100 + t);
        return gaussian_data(64, rng);
    };
    const auto schedule = std::make_shared<nn::CosineAnnealing>(0.05, 40);
    AffineFlow whole, resumed;
    nn::Adam whole_adam(whole.flow.parameters(), {.lr = 0.05});
    const TrainResult all = train_forward_kl_by_step(whole.flow, batch_at, {.steps = 40, .schedule = schedule, .optimizer = &whole_adam});
    REQUIRE(all.losses.size() == 40);
    CHECK(whole_adam.step_count() == 40);

    nn::Adam adam(resumed.flow.parameters(), {.lr = 0.05});
    const TrainResult first = train_forward_kl_by_step(resumed.flow, batch_at, {.steps = 25, .schedule = schedule, .optimizer = &adam});
    std::vector<std::size_t> logged;
    const TrainResult rest = train_forward_kl_by_step(
        resumed.flow, batch_at,
        {.steps = 40, .schedule = schedule, .on_log = [&](std::size_t step, double) { logged.push_back(step); },
         .first_step = 25, .optimizer = &adam});
    REQUIRE(rest.losses.size() == 15);
    CHECK(logged.front() == 26);
    CHECK(logged.back() == 40);
    for (std::size_t t = 0; t < 40; ++t) CHECK(all.losses[t] == (t < 25 ? first.losses[t] : rest.losses[t - 25]));
    CHECK(rest.learning_rates.front() == schedule->at(25));
    CHECK(max_abs_diff(whole.loc(), resumed.loc()) == 0);
    CHECK(max_abs_diff(whole.scale(), resumed.scale()) == 0);

    // Resuming with a fresh Adam (its moments lost) is not the same run: the comparison can fail.
    AffineFlow restarted;
    (void)train_forward_kl_by_step(restarted.flow, batch_at, {.steps = 25, .schedule = schedule});
    (void)train_forward_kl_by_step(restarted.flow, batch_at, {.steps = 40, .schedule = schedule, .first_step = 25});
    CHECK(max_abs_diff(whole.loc(), restarted.loc()) > 0);

    CHECK_THROWS_WITH_AS(train_forward_kl_by_step(resumed.flow, batch_at, {.steps = 40, .first_step = 40}),
                         "train_forward_kl_by_step: first_step (40) must be below steps (40)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_forward_kl_by_step(resumed.flow, {}, {.steps = 4}), "train_forward_kl_by_step: batch_at is empty",
                         std::invalid_argument);
}

namespace {

// N(0, I₂) → x = b + z: q = N(b, I), whose objective against gaussian_energy is, exactly,
// E[log q + U] = −log 2π − 1 + ½ Σ_d (1 + (b_d − μ_d)²)/σ_d².
std::unique_ptr<Flow> shifted_normal(const Tensor& b) {
    auto flow = std::make_unique<Flow>(std::make_unique<StandardNormal>(2));
    flow->add(std::make_unique<Affine>(b, Tensor{0.0, 0.0}));
    return flow;
}
double shifted_normal_objective(const Tensor& b) {
    double u = 0;
    for (std::size_t d = 0; d < 2; ++d) u += 0.5 * (1 + (b[d] - mu[d]) * (b[d] - mu[d])) / (sigma[d] * sigma[d]);
    return -std::log(2 * pi) - 1 + u;
}
const std::vector<Tensor> starts = {Tensor{4.0, 4.0}, Tensor{1.3, -2.0}, Tensor{-3.0, 0.0}};

}  // namespace

TEST_CASE("train_reverse_kl_best_of keeps the init with the lowest objective on fresh samples") {
    // With a zero learning rate nothing moves, so the objectives must be those of the starting flows,
    // recomputed here on the same selection stream, and the one nearest μ (init 1) is chosen.
    const BestOfInits best_of{.inits = 3, .trial_steps = 5, .selection_samples = 20000, .selection_seed = 7};
    const BestOfResult r = train_reverse_kl_best_of([](std::size_t i) { return shifted_normal(starts[i]); }, gaussian_energy,
                                                    {.steps = 8, .batch = 16, .learning_rate = 0}, best_of);
    REQUIRE(r.objectives.size() == 3);
    CHECK(r.chosen == 1);
    CHECK(r.beta == 1);
    CHECK(r.result.losses.size() == 3);  // the steps after the trial only
    Rng selection(7);
    for (std::size_t i = 0; i < 3; ++i) {
        auto fresh = shifted_normal(starts[i]);
        NoGrad no_grad;
        CHECK(r.objectives[i] == reverse_kl(*fresh, gaussian_energy, 20000, 1.0, selection).item());
        // Monte-Carlo error of 20,000 samples: log q + U has std ≈ 13 at init 0 and less at the others, s.e. ≤ 0.1.
        CHECK(std::abs(r.objectives[i] - shifted_normal_objective(starts[i])) <= 0.5);
    }
    CHECK(max_abs_diff(r.flow->parameters()[0]->value, starts[1]) == 0);
}

TEST_CASE("the chosen init's run is the uninterrupted train_reverse_kl run of that init, step for step") {
    const auto schedule = std::make_shared<nn::CosineAnnealing>(0.05, 30);
    const TrainOptions options{.steps = 30, .batch = 32, .seed = 11, .schedule = schedule,
                               .annealing = AnnealingSchedule{.beta_start = 0.1, .warmup_steps = 20}};
    for (const std::size_t best : {std::size_t{0}, std::size_t{2}}) {
        CAPTURE(best);
        // Init `best` starts at μ, the others far from it.
        auto make = [&](std::size_t i) { return shifted_normal(i == best ? mu : starts[i % 2 == 0 ? 2 : 0]); };
        std::size_t told = 99;
        std::vector<std::size_t> logged;
        TrainOptions shown = options;
        shown.on_log = [&](std::size_t step, double) { logged.push_back(step); };
        const BestOfResult r = train_reverse_kl_best_of(
            make, gaussian_energy, shown,
            {.inits = 3, .trial_steps = 12, .selection_samples = 4000, .on_chosen = [&](std::size_t c, Flow&) { told = c; }});
        CHECK(r.chosen == best);
        CHECK(told == best);
        CHECK(r.beta == doctest::Approx(0.1 + 11.0 / 20));
        CHECK(logged.front() == 13);
        CHECK(logged.back() == 30);

        auto alone = make(best);
        TrainOptions same = options;
        same.seed = options.seed + best * 0x9E3779B97F4A7C15ULL;  // init i's batch stream
        const TrainResult whole = train_reverse_kl(*alone, gaussian_energy, same);
        REQUIRE(r.result.losses.size() == 18);
        for (std::size_t t = 12; t < 30; ++t) CHECK(r.result.losses[t - 12] == whole.losses[t]);
        for (std::size_t p = 0; p < 2; ++p)
            CHECK(max_abs_diff(r.flow->parameters()[p]->value, alone->parameters()[p]->value) == 0);
    }
}

TEST_CASE("train_reverse_kl_best_of with one init is train_reverse_kl; it validates its options") {
    const TrainOptions options{.steps = 20, .batch = 32, .learning_rate = 0.02, .seed = 3};
    AffineFlow plain;
    const TrainResult whole = train_reverse_kl(plain.flow, gaussian_energy, options);
    const BestOfResult r = train_reverse_kl_best_of(
        [](std::size_t) { return shifted_normal(Tensor{0.0, 0.0}); }, gaussian_energy, options, {});
    CHECK(r.objectives.empty());
    CHECK(r.result.losses == whole.losses);
    CHECK(max_abs_diff(r.flow->parameters()[0]->value, plain.loc()) == 0);

    const auto make = [](std::size_t) { return shifted_normal(Tensor{0.0, 0.0}); };
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, gaussian_energy, options, {.inits = 0}),
                         "train_reverse_kl_best_of: inits must be at least 1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, gaussian_energy, options, {.inits = 2, .trial_steps = 20}),
                         "train_reverse_kl_best_of: with 2 inits, trial_steps must be in [1, steps = 20), got 20",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, gaussian_energy, options, {.inits = 2, .trial_steps = 0}),
                         "train_reverse_kl_best_of: with 2 inits, trial_steps must be in [1, steps = 20), got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, gaussian_energy, options, {.selection_samples = 0}),
                         "train_reverse_kl_best_of: selection_samples must be at least 1", std::invalid_argument);
    TrainOptions resumed = options;
    resumed.first_step = 4;
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, gaussian_energy, resumed, {}),
                         "train_reverse_kl_best_of: the run starts here, so first_step and optimizer must be unset",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of({}, gaussian_energy, options, {}), "train_reverse_kl_best_of: make is empty",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of(make, {}, options, {}),
                         "train_reverse_kl_best_of: the energy function is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_reverse_kl_best_of([](std::size_t) { return std::unique_ptr<Flow>(); }, gaussian_energy, options, {}),
                         "train_reverse_kl_best_of: make(0) returned no flow", std::invalid_argument);
}
