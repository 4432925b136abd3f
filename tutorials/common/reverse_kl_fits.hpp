// The reverse-KL fits of U1–U4 that tutorials 05 (planar) and 06 (radial) share: one fit per
// (target, K) from a fixed seed, its evaluation before and after (flows/evaluation.hpp), the table
// both pages print, and the checks that guard the paper's message (Rezende & Mohamed 2015, Fig. 3:
// the fit improves with the number of layers K).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flows/evaluation.hpp"
#include "flows/flow.hpp"
#include "flows/losses.hpp"
#include "flows/targets.hpp"
#include "tensor/random.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/verify.hpp"

namespace tapeflow::tutorial {

inline constexpr double fit_box = 4.0;  // the square (−4, 4)² of the paper's figure, where KL is measured

struct FitSettings {
    std::size_t steps = 0, batch = 0, eval_samples = 0;
    double lr = 0;
    bool cosine = true;  // Adam's rate falls from lr to 0 along a cosine over the run (nn::CosineAnnealing)
    std::optional<flows::AnnealingSchedule> annealing;  // none: β = 1 throughout
    bool confine = true;                                // the wall outside the box for U2–U4
    std::size_t inits = 1, trial_steps = 0;  // best of `inits` initializations after `trial_steps` (flows::BestOfInits)
    std::uint64_t seed = 0;
};

// The options every fit takes (--steps, --batch, --lr, --lr-schedule, --warmup, --inits, --trial-steps, --targets,
// --ks, --eval-samples, --confine, --seeds), with the defaults of the reference run (or a small run under --quick), and the
// settings they give. The warm-up's and the number of inits' defaults are the family's: those its full
// runs were measured with. Each init's trial lasts the warm-up by default, so that the objectives
// compared are those at β = 1, the reverse KL itself.
Cli& declare_fit_options(Cli& cli, std::size_t default_warmup, std::size_t default_inits);
FitSettings read_fit_settings(const Options& opt);
// The steps trained per fit in all: the chosen init's s.steps plus the other inits' trials.
std::size_t trained_steps(const FitSettings& s);
// One sentence on the restart rule of these settings, for the pages' "Flow: …" paragraph.
std::string restart_text(const FitSettings& s);
// True when none of those options was given and --quick is off: the run whose message is checked.
bool default_fit_run(const Options& opt);

// K layers of one family on N(0, I₂), initialized from rng.
using FlowMaker = std::function<std::unique_ptr<flows::Flow>(std::size_t k, Rng& rng)>;

// N(0, I₂) → K planar layers, u, w ~ N(0, 0.1²), b = 0, each moved to wᵀû = 0 when near_identity
// (flows::PlanarOptions).
std::unique_ptr<flows::Flow> planar_stack(std::size_t k, Rng& rng, bool near_identity);
// N(0, I₂) → K radial layers, z₀, α′, β′ ~ N(0, 0.1²): α ≈ ln 2, β̂ ≈ 0, close to the identity.
std::unique_ptr<flows::Flow> radial_stack(std::size_t k, Rng& rng);

struct Fit {
    std::string family;  // "planar", "radial"
    const flows::Target* target = nullptr;
    std::size_t k = 0;
    std::unique_ptr<flows::Flow> flow;
    std::size_t chosen_init = 0;               // which of FitSettings::inits initializations was kept
    std::vector<double> init_objectives;       // each one's objective after the trial (flows::BestOfResult)
    flows::ReverseKLEvaluation before, after;  // at β = 1, on eval_samples fresh samples; before: the chosen init's
    flows::BoxKLEvaluation box_after;          // KL(q_box ‖ p_box), never negative
    double initial_std = 0;                    // RMS of the untrained flow's sample coordinates (N(0, I) has 1)
    double wall = 0, cpu = 0;                  // seconds in the training loop, without the monitoring
    // KL(q_box ‖ p_box) on 2048 samples of the chosen init, at step 0 and 50 times along the run (after the trial)
    std::vector<double> curve_step, curve_kl;
};

// A fixed seed per (target, K), so that a fit does not change when other targets or Ks are added,
// and tutorials 05 and 06 fit planar flows from the same seeds.
std::uint64_t fit_seed(std::uint64_t seed, const flows::Target& target, std::size_t k);

// The energy a fit trains on: U, or U plus the wall outside the box (flows::confined_to_box) for the
// targets that are not normalizable on the plane.
flows::Energy training_energy(const flows::Target& target, bool confine);

// Trains one flow by flows::train_reverse_kl_best_of (init i drawn from its own seed, init 0
// from fit_seed itself) and
// evaluates the chosen init before and after.
Fit run_fit(const std::string& family, const FlowMaker& make, const flows::Target& target, std::size_t k,
            const FitSettings& s);

// The table of fits, one row each (both pages explain the columns after it).
std::string fit_table(const std::vector<Fit>& fits);

// The checks every fit must pass: a KL divergence is never negative (within 3 s.e.), and training
// lowered the loss.
void check_fit(Verifier& verifier, const Fit& f);

// The trained density holds the mass its sampler puts in the box: ∫_box q by the midpoint rule on 6
// randomly shifted cells × cells grids (flows::shifted_grid_mass) against the fraction of 20,000
// samples inside (flows::box_fraction), within 5 combined s.e. (the grid's s.e. rests on 5 degrees of
// freedom: P(|t₅| > 5) ≈ 0.004). A log-det of the wrong sign or a missing term is off by far more.
void check_box_mass(Verifier& verifier, const Fit& f, std::size_t cells, std::uint64_t seed);

// The paper's message, per target: KL(q_box ‖ p_box) falls with every step up in K (by more than
// the two estimates' combined 3 s.e.), and, when `largest_k_bound` is given, the largest K reaches it.
// `label` starts each check's name (e.g. "seed 1: ").
void check_more_layers_fit_better(Verifier& verifier, const std::vector<Fit>& fits, std::optional<double> largest_k_bound,
                                  const std::string& label = "");

// When --seeds S1,S2,… is given: the fits of every target and K again at each of these seeds (those
// of s.seed are taken from `fits`, not refitted), and the table of KL(q_box‖p_box), one row per target and K, one
// column per seed. When `guard` is set (the default settings), each seed's fits must pass
// check_more_layers_fit_better with that bound.
void seed_sweep(Verifier& verifier, const Options& opt, const std::string& family, const FlowMaker& make, const std::vector<std::string>& targets,
                const std::vector<std::size_t>& ks, const FitSettings& s, const std::vector<Fit>& fits,
                std::optional<double> guard);

}  // namespace tapeflow::tutorial
