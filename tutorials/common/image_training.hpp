// What the image tutorials (09 MLP RealNVP, 10 multi-scale RealNVP) share: mosaics of 28×28
// images and their PNG files, the reproducible training batches and the training step, the
// checkpoint's extra state, the divergence guard, and bits/dim over a whole image set.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flows/flow.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optimizer.hpp"
#include "nn/schedule.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
#include "tutorials/common/verify.hpp"

namespace tapeflow::tutorial::images {

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

// Everything a checkpoint holds beside the parameters and the layers' buffers (ActNorm's "initialized"
// flags, BatchNorm's running averages, which the module saves itself): Adam's moments, the step, the
// loss history (for the curve) and the run's configuration.
nn::CheckpointExtras training_state(nn::Optimizer& optimizer, std::uint64_t& step, Tensor& history,
                                    const nn::CheckpointConfig& config);

// Every parameter and every tensor of Adam's state is finite (a huge step can overflow a parameter
// while the loss that produced it was still finite).
bool all_finite(flows::Flow& flow, nn::Optimizer& optimizer);

// The message of a run stopped at a non-finite step: what went wrong and which checkpoint is kept.
std::string diverged_message(std::uint64_t step, double bits, const std::string& ckpt_path,
                             std::optional<std::uint64_t> last_saved_step);

// max |a − b| over all parameters of two flows of the same architecture.
double max_parameter_diff(flows::Flow& a, flows::Flow& b);

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
