// What the image tutorials (09 MLP RealNVP, 10 multi-scale RealNVP) share: their training options,
// mosaics of 28×28 images and their PNG files, the reproducible training batches and the training
// step, the divergence guard, and bits/dim over a whole image set.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flows/flow.hpp"
#include "flows/realnvp.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optimizer.hpp"
#include "nn/schedule.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/verify.hpp"

namespace tapeflow::tutorial::images {

// The defaults (full run, --quick) of the training options in which the two tutorials differ.
struct TrainingDefaults {
    Default steps, batch, warmup, checkpoint_every, test_images;
    std::string steps_help;  // what the default run costs
};

// Declares the options both tutorials train with, with one meaning, one set of bounds and one help
// text: --steps, --batch, --lr, --warmup, --checkpoint-every, --resume, --test-images,
// --train-images, --threads, --data. Each tutorial adds its model's options.
void declare_training_options(Cli& cli, const TrainingDefaults& defaults);

// Their values. `data_dir` is the folder the data is read from: --data, where "auto" means
// $TAPEFLOW_FASHION_MNIST or the system's data set folder (flows::fashion_mnist_dir()).
struct TrainingSettings {
    std::uint64_t steps = 0;
    std::size_t batch = 0, warmup = 0, checkpoint_every = 0, test_images = 0, train_images = 0;
    double lr = 0;
    bool resume = false;
    int threads = 1;
    std::string data_dir;
};
TrainingSettings parse_training_options(const Options& opt);

// The training options a resumed run must share with the run that saved the checkpoint, or "continues
// bit for bit" would quietly stop being true: --seed, --batch, --lr, --warmup, --steps, --train-images
// (the batches and the schedule). Each tutorial adds the options that define its model.
// --checkpoint-every, --test-images, --threads, --data and --out may change between the runs.
nn::CheckpointConfig training_config(const TrainingSettings& s, const Options& opt);

// The logit's margin α of both tutorials (RealNVP Sec. 4.1, docs/theory.md §6).
constexpr double logit_alpha = 0.05;

// Tutorial 09's model, which tutorial 10 compares with: make_realnvp with `couplings` checkerboard
// MLP couplings 784 → hidden → hidden → 1568 on 28×28 images, `norm` between them, then
// LogitPreprocessing(logit_alpha) as the last layer (latent → data), so that log_prob(x) is the density
// of the dequantized image x, Σ log|dy/dx| included.
std::unique_ptr<flows::Flow> make_mlp_realnvp(std::size_t couplings, std::size_t hidden, flows::Normalization norm,
                                              std::uint64_t seed);

// A grayscale picture: height × width values in [0, 1], row-major, row 0 at the top.
struct Mosaic {
    std::vector<double> pixels;
    int height, width;
};

// Square images [N, side²] with values in [0, 1] tiled into one picture of `rows` × `cols` images
// separated by a 2-pixel mid-gray gap (so black backgrounds stay apart), filled row by row.
Mosaic tile(const Tensor& images, std::size_t rows, std::size_t cols, std::size_t side = 28);

// The mosaic as an 8-bit PNG file (values in [0, 1] clamped to gray levels 0..255).
void write_png(const std::string& path, const Mosaic& m);

// The batch of training step `step` and its dequantization noise come from an Rng seeded by the step
// alone (splitmix64 seeding decorrelates neighbouring seeds), so a resumed run draws exactly the
// batches an uninterrupted one would, with no generator state in the checkpoint.
Tensor training_batch(const Tensor& pixels, std::size_t batch, std::uint64_t data_seed, std::uint64_t step);

// One step of maximum likelihood: L = −(1/N) Σ log p(xₙ) in nats. Returns the batch's bits/dim.
double train_step(flows::Flow& flow, nn::Optimizer& optimizer, const nn::Schedule& schedule, const Tensor& pixels,
                  std::size_t batch, std::uint64_t data_seed, std::uint64_t step);

// Every parameter and every tensor of Adam's state is finite (a huge step can overflow a parameter
// while the loss that produced it was still finite).
bool all_finite(flows::Flow& flow, nn::Optimizer& optimizer);

// The message of a run stopped at a non-finite step: what went wrong and which checkpoint is kept.
std::string diverged_message(std::uint64_t step, double bits, const std::string& ckpt_path,
                             std::optional<std::uint64_t> last_saved_step);

// Per-image bits/dim of `pixels` [N, D] under the flow (in whatever mode it is in; one
// dequantization draw per image from `rng`), under NoGrad in batches so memory stays bounded.
Tensor evaluate_bits(flows::Flow& flow, const Tensor& pixels, Rng& rng, std::size_t batch = 500);

// The mean of the last `window` entries at every step (fewer at the start), to show the trend
// through the batch-to-batch noise; window = a twentieth of the run, between 1 and 50 steps.
std::vector<double> running_mean(const std::vector<double>& values);

// Wall-clock and CPU seconds since construction (the process's CPU time, all threads).
class RunClock {
public:
    RunClock();
    double wall() const;
    double cpu() const;

private:
    std::chrono::steady_clock::time_point wall_start_;
    double cpu_start_;  // cpu_seconds() (console.hpp) at construction
};

// The running mean of the training batches' bits/dim against the step, as a terminal plot (ending at
// the last step), with a line saying over how many steps the mean runs.
void print_training_curve(const std::vector<double>& history, int height = 12);

// The resume check's verdict: the twin that loaded the checkpoint of step `from` produced `twin_losses`
// for the next steps; they must equal the uninterrupted run's history bit for bit, and the two
// models' parameters must agree exactly (`parameter_diff`, measured after those steps).
void check_resumed_run(Verifier& verifier, const std::vector<double>& history, std::uint64_t from,
                       const std::vector<double>& twin_losses, double parameter_diff);

}  // namespace tapeflow::tutorial::images
