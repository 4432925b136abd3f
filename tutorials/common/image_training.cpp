#include "tutorials/common/image_training.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "flows/fashion_mnist.hpp"
#include "flows/logit.hpp"
#include "tensor/file_io.hpp"
#include "tensor/linalg.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/png.hpp"
#include "tutorials/common/text_view.hpp"

namespace tapeflow::tutorial::images {

void declare_training_options(Cli& cli, const TrainingDefaults& d) {
    cli.integer("--steps", d.steps, {1, 10'000'000}, d.steps_help)
        .integer("--batch", d.batch, {2, 4096}, "images per training batch")
        .real("--lr", "0.001", {0, 1e12, true}, "Adam's peak learning rate (cosine-annealed to 0 at the last step)")
        .integer("--warmup", d.warmup, {1, 10'000'000}, "steps of linear learning-rate warm-up")
        .integer("--checkpoint-every", d.checkpoint_every, {1, 10'000'000}, "save <out>/checkpoint.ckpt every N steps")
        .flag("--resume", "continue training from <out>/checkpoint.ckpt")
        .integer("--test-images", d.test_images, {10, 10'000}, "test images to score")
        .integer("--train-images", "60000", {1000, 60'000}, "training images to load")
        .integer("--threads", "2", {1, 256}, "threads for the matrix products")
        .text("--data", "auto", "folder with the Fashion-MNIST .gz files; auto = $TAPEFLOW_FASHION_MNIST or "
                                "/usr/share/datasets/fashion-mnist");
}

std::unique_ptr<flows::Flow> make_mlp_realnvp(std::size_t couplings, std::size_t hidden, flows::Normalization norm,
                                              std::uint64_t seed) {
    constexpr std::size_t side = 28;
    auto flow = flows::make_realnvp({.dim = side * side,
                                     .couplings = couplings,
                                     .hidden = {hidden, hidden},
                                     .mask = flows::CouplingMask::checkerboard,
                                     .height = side,
                                     .width = side,
                                     .norm = norm,
                                     .seed = seed});
    flow->add(std::make_unique<flows::LogitPreprocessing>(logit_alpha));
    return flow;
}

TrainingSettings parse_training_options(const Options& opt) {
    const auto count = [&](const char* name) { return static_cast<std::size_t>(opt.integer(name)); };
    TrainingSettings s;
    s.steps = static_cast<std::uint64_t>(opt.integer("--steps"));
    s.batch = count("--batch");
    s.warmup = count("--warmup");
    s.checkpoint_every = count("--checkpoint-every");
    s.test_images = count("--test-images");
    s.train_images = count("--train-images");
    s.lr = opt.real("--lr");
    s.resume = opt.boolean("--resume");
    s.threads = static_cast<int>(opt.integer("--threads"));
    s.data_dir = opt.text("--data");
    if (s.data_dir == "auto") s.data_dir = flows::fashion_mnist_dir();
    return s;
}

nn::CheckpointConfig training_config(const TrainingSettings& s, const Options& opt) {
    const auto text = [](auto v) { return fmt::format("{}", v); };
    return {{"--seed", text(opt.seed)},   {"--batch", text(s.batch)}, {"--lr", text(s.lr)},
            {"--warmup", text(s.warmup)}, {"--steps", text(s.steps)}, {"--train-images", text(s.train_images)}};
}

Mosaic tile(const Tensor& images, std::size_t rows, std::size_t cols, std::size_t side) {
    constexpr std::size_t gap = 2;
    const std::size_t h = rows * side + (rows - 1) * gap, w = cols * side + (cols - 1) * gap;
    Mosaic m{std::vector<double>(h * w, 0.5), static_cast<int>(h), static_cast<int>(w)};
    for (std::size_t k = 0; k < std::min(images.size(0), rows * cols); ++k) {
        const std::size_t r0 = (k / cols) * (side + gap), c0 = (k % cols) * (side + gap);
        for (std::size_t r = 0; r < side; ++r)
            for (std::size_t c = 0; c < side; ++c) m.pixels[(r0 + r) * w + c0 + c] = images[k * side * side + r * side + c];
    }
    return m;
}

void write_png(const std::string& path, const Mosaic& m) {
    std::vector<std::uint8_t> rgba;
    rgba.reserve(m.pixels.size() * 4);
    for (const double g : m.pixels) {
        const auto level = static_cast<std::uint8_t>(std::lround(255 * std::clamp(g, 0.0, 1.0)));
        rgba.insert(rgba.end(), {level, level, level, 255});
    }
    const std::vector<std::uint8_t> bytes = plot::encode_png(m.width, m.height, rgba);
    write_file_atomically(path, bytes, "PNG file");
}

Tensor training_batch(const Tensor& pixels, std::size_t batch, std::uint64_t data_seed, std::uint64_t step) {
    Rng rng(data_seed + step);
    std::vector<std::size_t> indices(batch);
    for (auto& i : indices) i = static_cast<std::size_t>(rng.below(pixels.size(0)));
    return flows::dequantize(index_select(pixels, 0, indices), rng);
}

double train_step(flows::Flow& flow, nn::Optimizer& optimizer, const nn::Schedule& schedule, const Tensor& pixels,
                  std::size_t batch, std::uint64_t data_seed, std::uint64_t step) {
    Tape& tape = Tape::current();
    const Tensor x = training_batch(pixels, batch, data_seed, step);
    schedule.apply(optimizer);
    optimizer.zero_grad();
    const Var loss = -mean(flow.log_prob(Var(x)));
    tape.backward(loss);
    optimizer.step();
    const double nll = loss.item();
    tape.clear();
    return flows::bits_per_dim(-nll, 0, flow.dim());
}

bool all_finite(flows::Flow& flow, nn::Optimizer& optimizer) {
    const auto finite = [](const Tensor& t) {
        return !t.defined() || std::all_of(t.span().begin(), t.span().end(), [](double v) { return std::isfinite(v); });
    };
    for (const Parameter* p : flow.parameters())
        if (!finite(p->value)) return false;
    for (const auto& [name, t] : optimizer.state())
        if (!finite(*t)) return false;
    return true;
}

std::string diverged_message(std::uint64_t step, double bits, const std::string& ckpt_path,
                             std::optional<std::uint64_t> last_saved_step) {
    const std::string what = std::isfinite(bits) ? fmt::format("a parameter or Adam's state is not finite after the "
                                                               "update (bits/dim {:.4f})", bits)
                                                 : fmt::format("the batch's bits/dim is {}", std::isnan(bits) ? "NaN" : "infinite");
    const std::string kept =
        last_saved_step ? fmt::format("the last good checkpoint, step {}, is kept at {}", *last_saved_step, ckpt_path)
                        : fmt::format("no checkpoint was saved by this run (anything at {} is untouched)", ckpt_path);
    return fmt::format("training diverged at step {}: {}; stopped without saving it, {}. Try a lower --lr or a longer "
                       "--warmup.",
                       step, what, kept);
}

Tensor evaluate_bits(flows::Flow& flow, const Tensor& pixels, Rng& rng, std::size_t batch) {
    NoGrad no_grad;
    const std::size_t n = pixels.size(0);
    Tensor out(Shape{n});
    for (std::size_t start = 0; start < n; start += batch) {
        const std::size_t len = std::min(batch, n - start);
        const Tensor x = flows::dequantize(narrow(pixels, 0, start, len), rng);
        const Tensor log_px = flow.log_prob(Var(x)).value();
        const Tensor bits = flows::bits_per_dim(log_px, Tensor::zeros(log_px.shape()), flow.dim());
        std::copy(bits.data(), bits.data() + len, out.data() + start);
    }
    return out;
}

std::vector<double> running_mean(const std::vector<double>& values) {
    const std::size_t window = std::clamp<std::size_t>(values.size() / 20, 1, 50);
    std::vector<double> out(values.size());
    double acc = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
        acc += values[i];
        if (i >= window) acc -= values[i - window];
        out[i] = acc / static_cast<double>(std::min(i + 1, window));
    }
    return out;
}

RunClock::RunClock() : wall_start_(std::chrono::steady_clock::now()), cpu_start_(cpu_seconds()) {}

double RunClock::wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
}

double RunClock::cpu() const { return cpu_seconds() - cpu_start_; }

void print_training_curve(const std::vector<double>& history, int height) {
    if (history.empty()) return;
    const std::vector<double> smooth = running_mean(history);
    std::vector<double> xs, ys;
    const std::size_t stride = std::max<std::size_t>(1, history.size() / 200);
    for (std::size_t i = 0; i < history.size(); i += stride) {
        xs.push_back(static_cast<double>(i + 1));
        ys.push_back(smooth[i]);
    }
    if (xs.back() != static_cast<double>(history.size())) {  // always end at the last step
        xs.push_back(static_cast<double>(history.size()));
        ys.push_back(smooth.back());
    }
    fmt::print("\nTraining bits/dim (running mean over {} steps) against the step:\n\n",
               std::clamp<std::size_t>(history.size() / 20, 1, 50));
    print_indented(plot::ascii_plot(xs, ys, 64, height));
}

void check_resumed_run(Verifier& verifier, const std::vector<double>& history, std::uint64_t from,
                       const std::vector<double>& twin_losses, double parameter_diff) {
    bool same = true;
    std::string trail;
    for (std::size_t k = 0; k < twin_losses.size(); ++k) {
        const double main_loss = history.at(from + k);
        same = same && main_loss == twin_losses[k];
        trail += fmt::format("{}step {}: {:.12f} / {:.12f}", k ? ", " : "", from + 1 + k, main_loss, twin_losses[k]);
    }
    print_indented(fmt::format("(uninterrupted / resumed) {}", trail));
    verifier.check("resumed losses = uninterrupted, bit for bit", same);
    verifier.check_error(fmt::format("max |Δ parameters| at step {}", from + twin_losses.size()), parameter_diff, 0);
}

}  // namespace tapeflow::tutorial::images
