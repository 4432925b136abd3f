#include "tutorials/common/reverse_kl_fits.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/distributions.hpp"
#include "flows/planar.hpp"
#include "flows/radial.hpp"
#include "flows/trainer.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduce.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/text_view.hpp"

namespace tapeflow::tutorial {

namespace {
// Fresh samples that estimate each init's objective after its trial (flows::BestOfInits).
constexpr std::size_t selection_samples = 10000;
}  // namespace

Cli& declare_fit_options(Cli& cli, std::size_t default_warmup, std::size_t default_inits) {
    const std::string inits = std::to_string(default_inits), quick_inits = default_inits > 1 ? "2" : "1";
    return cli.integer("--steps", {"40000", "500"}, {1, 10'000'000}, "training steps per fit")
        .integer("--batch", "256", {1, 100'000}, "samples per training step")
        .real("--lr", "3e-3", {0, 1, true}, "Adam's learning rate (at the start, with the cosine schedule)")
        .choice("--lr-schedule", "cosine", {"cosine", "constant"}, "cosine: the rate falls from --lr to 0 over the run")
        .integer("--warmup", {std::to_string(default_warmup), "100"}, {0, 10'000'000},
                 "annealing β_t = min(1, 0.01 + t/N): a warm-up of N steps (0: β = 1 throughout)")
        .integer("--inits", {inits, quick_inits}, {1, 100},
                 "initializations tried per fit; the one with the lowest objective after its trial continues")
        .integer("--trial-steps", {std::to_string(default_warmup), "100"}, {1, 10'000'000},
                 "steps each initialization is trained before the choice (by default the warm-up)")
        .choice_list("--targets", {"u1,u2,u3,u4", "u1"}, flows::target_names(), "comma-separated energies")
        .integer_list("--ks", {"2,8,32", "2,8"}, {1, 1000}, "comma-separated numbers of layers")
        .integer("--eval-samples", {"100000", "10000"}, {100, 100'000'000}, "samples for the final KL")
        .boolean("--confine", "true", "add a wall outside (−4, 4)² to U2–U4, which are not normalizable on the plane")
        .integer_list("--seeds", "0,1,2", {0, 1'000'000},
                      "when given: refit at each of these seeds and print the table of KL over seeds");
}

FitSettings read_fit_settings(const Options& opt) {
    FitSettings s{};
    s.steps = static_cast<std::size_t>(opt.integer("--steps"));
    s.batch = static_cast<std::size_t>(opt.integer("--batch"));
    s.eval_samples = static_cast<std::size_t>(opt.integer("--eval-samples"));
    s.lr = opt.real("--lr");
    s.cosine = opt.text("--lr-schedule") == "cosine";
    if (opt.integer("--warmup") > 0)
        s.annealing = flows::AnnealingSchedule{.beta_start = 0.01,
                                               .warmup_steps = static_cast<std::size_t>(opt.integer("--warmup"))};
    s.confine = opt.boolean("--confine");
    s.inits = static_cast<std::size_t>(opt.integer("--inits"));
    s.trial_steps = static_cast<std::size_t>(opt.integer("--trial-steps"));
    if (s.inits > 1 && s.trial_steps >= s.steps)
        throw std::invalid_argument(fmt::format("--trial-steps ({}) must be below --steps ({}) when --inits is above 1",
                                                s.trial_steps, s.steps));
    s.seed = opt.seed;
    return s;
}

std::size_t trained_steps(const FitSettings& s) { return s.steps + (s.inits - 1) * s.trial_steps; }

std::string restart_text(const FitSettings& s) {
    if (s.inits == 1) return "One initialization per fit (--inits 1).";
    return fmt::format(
        "Best of {} initializations: each is trained for the first {} steps of that run, its objective\n"
        "mean[log q + β U] (β of step {}) is estimated on {} fresh samples, and the lowest continues\n"
        "(flows::train_reverse_kl_best_of; chosen by the training objective, never by the KL below).",
        s.inits, s.trial_steps, s.trial_steps, selection_samples);
}

bool default_fit_run(const Options& opt) {
    for (const char* name :
         {"--steps", "--batch", "--lr", "--lr-schedule", "--warmup", "--inits", "--trial-steps", "--eval-samples", "--confine"})
        if (opt.given(name)) return false;
    return !opt.quick;
}

std::unique_ptr<flows::Flow> planar_stack(std::size_t k, Rng& rng, bool near_identity) {
    auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2));
    for (std::size_t i = 0; i < k; ++i)
        flow->add(std::make_unique<flows::Planar>(2, rng, flows::PlanarOptions{.init_std = 0.1, .near_identity = near_identity}));
    return flow;
}

std::unique_ptr<flows::Flow> radial_stack(std::size_t k, Rng& rng) {
    auto flow = std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2));
    for (std::size_t i = 0; i < k; ++i) flow->add(std::make_unique<flows::Radial>(2, rng, flows::RadialOptions{.init_std = 0.1}));
    return flow;
}

std::uint64_t fit_seed(std::uint64_t seed, const flows::Target& target, std::size_t k) {
    const std::vector<std::string> names = flows::target_names();
    const auto index = static_cast<std::uint64_t>(std::find(names.begin(), names.end(), target.name) - names.begin());
    return seed * 1'000'003 + 1009 * (index + 1) + k;
}

flows::Energy training_energy(const flows::Target& target, bool confine) {
    return confine && !target.normalizable_on_plane ? flows::confined_to_box(target.energy, fit_box) : target.energy;
}

Fit run_fit(const std::string& family, const FlowMaker& make, const flows::Target& target, std::size_t k,
            const FitSettings& s) {
    const std::uint64_t seed = fit_seed(s.seed, target, k);
    // Init 0 is drawn from the fit's seed itself; the others from seeds far from it and from seed + 1…5.
    const auto make_init = [&](std::size_t i) {
        Rng init_rng(seed + i * 0xD1B54A32D192ED03ULL);
        return make(k, init_rng);
    };
    Fit fit;
    fit.family = family;
    fit.target = &target;
    fit.k = k;
    const flows::Energy energy = training_energy(target, s.confine);
    const double log_z = flows::log_partition_box(target.energy, fit_box);
    flows::Flow* current = nullptr;  // the chosen init, once chosen
    Rng monitor_rng(seed + 3);
    double monitor_wall = 0, monitor_cpu = 0;
    // Runs work() off the clock: the fit's wall and CPU times are the training's alone.
    const auto untimed = [&](const auto& work) {
        const double c0 = cpu_seconds();
        const auto w0 = std::chrono::steady_clock::now();
        work();
        monitor_cpu += cpu_seconds() - c0;
        monitor_wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    };
    auto monitor = [&](flows::Flow& flow, std::size_t step) {
        untimed([&] {
            fit.curve_step.push_back(static_cast<double>(step));
            fit.curve_kl.push_back(flows::evaluate_box_kl(flow, energy, log_z, 2048, monitor_rng, fit_box).kl);
        });
    };
    // The chosen init as it started (made again from its seed): its loss before training and step 0 of the curve.
    auto evaluate_start = [&](std::size_t chosen) {
        const std::unique_ptr<flows::Flow> start = make_init(chosen);
        untimed([&] {
            Rng eval_rng(seed + 2);
            fit.before = flows::evaluate_reverse_kl(*start, energy, s.eval_samples, eval_rng, fit_box);
            NoGrad no_grad;
            fit.initial_std = std::sqrt(mean(square(start->sample(10000, eval_rng))).item());
        });
        monitor(*start, 0);
    };
    flows::TrainOptions options{
        .steps = s.steps,
        .batch = s.batch,
        .learning_rate = s.lr,
        .seed = seed + 1,
        .log_every = std::max<std::size_t>(1, s.steps / 50),
        .on_log = [&](std::size_t step, double) { monitor(*current, step); },
        .progress = true,
        .progress_options = {.label = fmt::format("    {} {} K = {}", family, target.name, k), .plain_lines = 4},
        .annealing = s.annealing,
    };
    if (s.cosine) options.schedule = std::make_shared<nn::CosineAnnealing>(s.lr, s.steps);
    const flows::BestOfInits best_of{
        .inits = s.inits,
        .trial_steps = s.inits > 1 ? s.trial_steps : 0,
        .selection_samples = selection_samples,
        .selection_seed = seed + 6,
        .on_chosen =
            [&](std::size_t chosen, flows::Flow& flow) {
                current = &flow;
                evaluate_start(chosen);
            },
    };
    const double cpu_start = cpu_seconds();
    const auto wall_start = std::chrono::steady_clock::now();
    flows::BestOfResult result = flows::train_reverse_kl_best_of(make_init, energy, options, best_of);
    fit.cpu = cpu_seconds() - cpu_start - monitor_cpu;
    fit.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count() - monitor_wall;
    fit.flow = std::move(result.flow);
    fit.chosen_init = result.chosen;
    fit.init_objectives = result.objectives;
    if (!result.objectives.empty())
        fmt::print("      objectives after the trials (β = {:.3f}): {:.4f}; init {} continued\n", result.beta,
                   fmt::join(result.objectives, ", "), result.chosen + 1);
    flows::Flow& flow = *fit.flow;
    Rng eval_rng(seed + 4);
    fit.after = flows::evaluate_reverse_kl(flow, energy, s.eval_samples, eval_rng, fit_box);
    Rng box_rng(seed + 5);
    fit.box_after = flows::evaluate_box_kl(flow, energy, log_z, s.eval_samples, box_rng, fit_box);
    return fit;
}

std::string fit_table(const std::vector<Fit>& fits) {
    std::vector<std::vector<std::string>> rows;
    for (const Fit& f : fits)
        rows.push_back({f.target->name, fmt::format("{}", f.k),
                        fmt::format("{} of {}", f.chosen_init + 1, std::max<std::size_t>(1, f.init_objectives.size())),
                        fmt::format("{:.3f}", f.initial_std),
                        fmt::format("{:.4f}", f.before.loss), fmt::format("{:.4f}", f.after.loss),
                        fmt::format("{:.4f}", f.after.kl_box), fmt::format("{:.4f}", f.box_after.mass),
                        fmt::format("{:.4f}", f.box_after.kl), fmt::format("{:.4f}", f.box_after.standard_error),
                        fmt::format("{:.2f}", f.wall), fmt::format("{:.2f}", f.cpu)});
    return plot::ascii_table({"target", "K", "init", "q₀ std", "loss before", "loss after", "KL_box", "q(box)",
                              "KL(q_box‖p_box)", "± s.e.", "wall s", "CPU s"},
                             rows);
}

void check_fit(Verifier& verifier, const Fit& f) {
    const std::string what = fmt::format("{} {} K = {}", f.family, f.target->name, f.k);
    verifier.check(what + ": KL(q_box‖p_box) ≥ −3 s.e.",
                   std::isfinite(f.box_after.kl) && f.box_after.kl >= -3 * f.box_after.standard_error,
                   fmt::format("{:.4f} (s.e. {:.4f})", f.box_after.kl, f.box_after.standard_error));
    verifier.check(what + ": training lowered the loss", f.after.loss < f.before.loss,
                   fmt::format("{:.4f} → {:.4f}", f.before.loss, f.after.loss));
}

void check_box_mass(Verifier& verifier, const Fit& f, std::size_t cells, std::uint64_t seed) {
    Rng grid_rng(seed), sample_rng(seed + 1);
    const flows::BoxMass grid = flows::shifted_grid_mass(*f.flow, fit_box, cells, 6, grid_rng);
    const flows::BoxMass samples = flows::box_fraction(*f.flow, 20000, sample_rng, fit_box);
    verifier.check_close(fmt::format("{} {} K = {}: ∫_box q, shifted grids vs samples", f.family, f.target->name, f.k),
                         {"grids", grid.mass}, {"samples inside", samples.mass}, 0,
                         5 * std::hypot(grid.standard_error, samples.standard_error));
}

void check_more_layers_fit_better(Verifier& verifier, const std::vector<Fit>& fits, std::optional<double> largest_k_bound,
                                  const std::string& label) {
    std::map<std::string, std::vector<const Fit*>> by_target;
    std::vector<std::string> order;
    for (const Fit& f : fits) {
        if (!by_target.count(f.target->name)) order.push_back(f.target->name);
        by_target[f.target->name].push_back(&f);
    }
    for (const std::string& name : order) {
        std::vector<const Fit*> row = by_target[name];
        std::sort(row.begin(), row.end(), [](const Fit* a, const Fit* b) { return a->k < b->k; });
        for (std::size_t i = 1; i < row.size(); ++i) {
            const flows::BoxKLEvaluation &fewer = row[i - 1]->box_after, &more = row[i]->box_after;
            const double noise = 3 * std::hypot(fewer.standard_error, more.standard_error);
            verifier.check(fmt::format("{}{} {}: KL(K = {}) < KL(K = {}) − 3 s.e.", label, row[i]->family, name, row[i]->k, row[i - 1]->k),
                           more.kl < fewer.kl - noise,
                           fmt::format("{:.4f} vs {:.4f} (3 s.e. {:.4f})", more.kl, fewer.kl, noise));
        }
        if (largest_k_bound && !row.empty())
            verifier.check(fmt::format("{}{} {}: KL(K = {}) ≤ {:.2f}", label, row.back()->family, name, row.back()->k, *largest_k_bound),
                           row.back()->box_after.kl <= *largest_k_bound, fmt::format("{:.4f}", row.back()->box_after.kl));
    }
}

void seed_sweep(Verifier& verifier, const Options& opt, const std::string& family, const FlowMaker& make,
                const std::vector<std::string>& targets, const std::vector<std::size_t>& ks, const FitSettings& s,
                const std::vector<Fit>& fits, std::optional<double> guard) {
    if (!opt.given("--seeds")) return;
    std::vector<std::uint64_t> seeds;
    for (const std::int64_t seed : opt.integers("--seeds")) seeds.push_back(static_cast<std::uint64_t>(seed));
    fmt::print("\n--seeds: the fits again at each seed (those of --seed {} are the ones above).\n\n", s.seed);
    // kl[seed index][(target, K)]
    std::vector<std::map<std::pair<std::string, std::size_t>, double>> kl(seeds.size());
    for (std::size_t i = 0; i < seeds.size(); ++i) {
        std::vector<Fit> refits;
        const std::vector<Fit>* these = &fits;
        if (seeds[i] != s.seed) {
            FitSettings other = s;
            other.seed = seeds[i];
            fmt::print("  seed {}:\n", seeds[i]);
            for (const std::string& name : targets)
                for (const std::size_t k : ks) refits.push_back(run_fit(family, make, flows::target(name), k, other));
            these = &refits;
        }
        for (const Fit& f : *these) kl[i][{f.target->name, f.k}] = f.box_after.kl;
        if (guard) check_more_layers_fit_better(verifier, *these, guard, fmt::format("seed {}: ", seeds[i]));
    }
    std::vector<std::string> header = {"target", "K"};
    for (const std::uint64_t seed : seeds) header.push_back(fmt::format("seed {}", seed));
    std::vector<std::vector<std::string>> rows;
    for (const std::string& name : targets)
        for (const std::size_t k : ks) {
            std::vector<std::string> row = {name, fmt::format("{}", k)};
            for (std::size_t i = 0; i < seeds.size(); ++i) row.push_back(fmt::format("{:.4f}", kl[i].at({name, k})));
            rows.push_back(std::move(row));
        }
    fmt::print("\n{} KL(q_box‖p_box) over seeds:\n\n", family);
    print_indented(plot::ascii_table(header, rows));
    fmt::print("\n");
}

}  // namespace tapeflow::tutorial
