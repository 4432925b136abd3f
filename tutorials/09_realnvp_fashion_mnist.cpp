// 09_realnvp_fashion_mnist: RealNVP on Fashion-MNIST: dequantization, the logit transform, bits per dimension, checkerboard couplings in 784 dimensions, checkpoints and --resume, samples and reconstructions
//
// The first flow on real images. Fashion-MNIST's 28×28 pixels are integers 0..255, so before a
// density can be fitted they are dequantized, x = (v + u)/256, and moved off the edges of [0, 1]
// by the logit transform y = logit(α + (1 − 2α)x) (docs/theory.md §6). Its log-det per pixel is
// checked against finite differences, and the bits-per-dimension bookkeeping against the uniform
// model, which must score exactly 8 bits. The model is RealNVP with MLP couplings over checkerboard
// masks (docs/theory.md §5); one coupling's triangular Jacobian is checked on a 4×4 image and the whole
// flow's round trip on real ones. Training saves a checkpoint (model, Adam's moments, step, the
// loss history) every N steps, and `--resume` continues from it bit for bit, which the tutorial
// verifies by resuming a twin from the first checkpoint. Then the test bits/dim over the 10,000
// test images, samples at two temperatures, and exact reconstructions.
//
//   ./tapeflow tutorial 09 [--steps N] [--batch N] [--hidden H] [--couplings K] [--norm NAME] [--lr LR]
//                          [--checkpoint-every N] [--resume] [--test-images N] [--train-images N]
//                          [--threads N] [--data DIR] [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "flows/actnorm.hpp"
#include "flows/coupling.hpp"
#include "flows/fashion_mnist.hpp"
#include "flows/flow.hpp"
#include "flows/logit.hpp"
#include "flows/realnvp.hpp"
#include "nn/checkpoint.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "nn/progress.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/file_io.hpp"
#include "tensor/linalg.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/image_training.hpp"
#include "tutorials/common/perturb.hpp"
#include "tutorials/common/png.hpp"
#include "tutorials/common/python_export.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/training_state.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;
using namespace tapeflow::tutorial::images;
using tapeflow::tutorial::max_parameter_diff;
using tapeflow::tutorial::training_state;

constexpr std::size_t side = 28;
constexpr std::size_t dim = side * side;  // D = 784
constexpr double alpha = logit_alpha;      // the logit's margin (RealNVP Sec. 4.1, docs/theory.md §6)
// The two-pixel Gaussian on the logit side whose P(v) is exact (section 2's Jensen check).
constexpr std::array<double, 2> jensen_mu{0.5, -1.0}, jensen_sigma{0.8, 1.5};
constexpr std::size_t resume_check_steps = 3;
const double ln2 = std::numbers::ln2;
// Image panels sized so that one pixel is exactly 3 screen pixels (Axes::image with hidden axes
// leaves 6 px on three sides and 24 px above for a title): no seams between the pixel squares.
constexpr double image_panel_width = 3 * side + 12, image_panel_height = 3 * side + 30;

// The training options (tutorials/common/image_training) and the model's.
struct Settings : TrainingSettings {
    std::size_t hidden = 0, couplings = 0;
    flows::Normalization norm = flows::Normalization::actnorm;
};

Settings mlp_realnvp_settings(const tutorial::Options& opt) {
    Settings s;
    static_cast<TrainingSettings&>(s) = parse_training_options(opt);
    s.hidden = static_cast<std::size_t>(opt.integer("--hidden"));
    s.couplings = static_cast<std::size_t>(opt.integer("--couplings"));
    const std::string norm = opt.text("--norm");
    if (norm == "none") s.norm = flows::Normalization::none;
    else if (norm == "actnorm") s.norm = flows::Normalization::actnorm;
    else if (norm == "batchnorm") s.norm = flows::Normalization::batchnorm;
    return s;
}

using tutorial::print_indented;

std::string thousands(std::size_t n) {
    std::string digits = fmt::format("{}", n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// Row i of a [N, D] tensor as a [1, D] tensor (a copy).
Tensor row(const Tensor& t, std::size_t i) { return index_select(t, 0, {i}); }

// A 28×28 image of values in [0, 1] (0 black) in the terminal, two characters per pixel so that it
// is about as wide as it is tall, shaded " .:-=+*#%@" from dark to bright.
std::string ascii_image(std::span<const double> gray) {
    static const std::string shades = " .:-=+*#%@";
    std::string out;
    for (std::size_t r = 0; r < side; ++r) {
        out += '|';
        for (std::size_t c = 0; c < side; ++c) {
            const double g = std::clamp(gray[r * side + c], 0.0, 1.0);
            const char ch = shades[static_cast<std::size_t>(std::lround(g * static_cast<double>(shades.size() - 1)))];
            out += ch;
            out += ch;
        }
        out += "|\n";
    }
    return out;
}

// ---- the model -------------------------------------------------------------------------------------

// Bits per dimension of each image from the flow's log p(x) [N] (docs/theory.md §6).
Tensor bits_per_image(const Tensor& log_px) { return flows::bits_per_dim(log_px, Tensor::zeros(log_px.shape()), dim); }

// The options a resumed run must share with the run that saved the checkpoint: the training's and
// the model's.
nn::CheckpointConfig mlp_realnvp_config(const Settings& s, const tutorial::Options& opt) {
    nn::CheckpointConfig config = training_config(s, opt);
    config["--hidden"] = fmt::format("{}", s.hidden);
    config["--couplings"] = fmt::format("{}", s.couplings);
    config["--norm"] = std::string(flows::to_string(s.norm));
    return config;
}

// A fresh flow is the identity on the logit side, so the round-trip check first moves every
// parameter by N(0, perturb_std²) (tutorials/common/perturb.hpp): every coupling and ActNorm transforms.
constexpr double perturb_std = 0.02;

double standard_normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

int run(const tutorial::Options& opt) {
    const Settings s = mlp_realnvp_settings(opt);
    const int threads = set_num_threads(s.threads);
    const std::filesystem::path out_dir(opt.out_dir);
    std::filesystem::create_directories(out_dir);
    const RunClock clock;
    const auto wall_seconds = [&clock] { return clock.wall(); };
    const auto cpu_seconds = [&clock] { return clock.cpu(); };

    const std::string ckpt_path = (out_dir / "checkpoint.ckpt").string();
    if (s.resume && !std::filesystem::exists(ckpt_path))  // before any work, not after sections 1-3
        throw std::runtime_error(fmt::format(
            "--resume: no checkpoint at {}; run once without --resume (same --out) to create it", ckpt_path));
    // Also before any work: a resume with other settings would not continue the saved run.
    if (s.resume) nn::require_checkpoint_config(ckpt_path, mlp_realnvp_config(s, opt));

    Verifier verifier;
    Tape& tape = Tape::current();
    tape.clear();
    // One seed drives everything, through independent streams.
    Rng root(opt.seed);
    Rng look_rng = root.split();                // section 2's dequantization
    Rng check_rng = root.split();               // section 3's random parameters and inputs
    const std::uint64_t init_seed = root.next_u64();
    const std::uint64_t data_seed = root.next_u64();  // training batches: Rng(data_seed + step)
    Rng eval_rng = root.split();                // section 5's dequantization of the test images
    Rng sample_rng = root.split();              // section 6

    // ------------------------------------------------------------------------------------------
    verifier.section("The data");
    const auto load = [&s](const std::string& split, std::size_t limit) {
        try {
            return flows::load_fashion_mnist(split, s.data_dir, limit);
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(fmt::format(
                "{}\n(the data comes from the Debian package dataset-fashion-mnist, which ./tapeflow tutorial 09 "
                "installs; or point --data or $TAPEFLOW_FASHION_MNIST at a folder holding its four .gz files)",
                e.what()));
        }
    };
    const flows::FashionMnist train = load("train", s.train_images);
    const flows::FashionMnist test = load("test", s.test_images);
    const auto& classes = flows::fashion_mnist_classes();
    const std::size_t n_train = train.pixels.size(0), n_test = test.pixels.size(0);
    fmt::print(
        "load_fashion_mnist(\"train\") and (\"test\") read the gzipped IDX files in {}\n"
        "(the Debian package dataset-fashion-mnist): {} training and {} test images, each a row of\n"
        "D = 28·28 = {} pixels with integer values 0 (background) to 255, and a class label 0..9.\n\n",
        s.data_dir, thousands(n_train), thousands(n_test), dim);
    verifier.check_close("training images", {"loaded", static_cast<double>(n_train)},
                         {"asked for", static_cast<double>(s.train_images)}, 0, 0);
    verifier.check_close("test images", {"loaded", static_cast<double>(n_test)},
                         {"asked for", static_cast<double>(s.test_images)}, 0, 0);
    verifier.check("pixels tensors are [N, 784]",
                   train.pixels.shape() == Shape{n_train, dim} && test.pixels.shape() == Shape{n_test, dim},
                   fmt::format("{} and {}", train.pixels.shape(), test.pixels.shape()));
    {
        bool integers = true;
        double lo = 255, hi = 0;
        for (const Tensor* t : {&train.pixels, &test.pixels})
            for (const double v : t->span()) {
                integers = integers && v == std::floor(v) && v >= 0 && v <= 255;
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        verifier.check("every pixel an integer in 0..255", integers, fmt::format("min {}, max {}", lo, hi));
    }
    std::vector<std::size_t> train_count(10, 0), test_count(10, 0);
    std::vector<double> class_mean(10, 0.0);
    for (std::size_t i = 0; i < n_train; ++i) {
        ++train_count.at(train.labels[i]);
        double sum_pixels = 0;
        for (std::size_t d = 0; d < dim; ++d) sum_pixels += train.pixels[i * dim + d];
        class_mean[train.labels[i]] += sum_pixels / dim;
    }
    for (std::size_t i = 0; i < n_test; ++i) ++test_count.at(test.labels[i]);
    {
        std::vector<std::vector<std::string>> rows;
        for (std::size_t c = 0; c < 10; ++c)
            rows.push_back({fmt::format("{}", c), classes[c], fmt::format("{}", train_count[c]),
                            fmt::format("{}", test_count[c]),
                            fmt::format("{:.1f}", train_count[c] ? class_mean[c] / train_count[c] : 0.0)});
        print_indented(plot::ascii_table({"label", "class", "train", "test", "mean pixel"}, rows));
    }
    if (n_train == 60'000 && n_test == 10'000) {
        const bool balanced = std::all_of(train_count.begin(), train_count.end(), [](auto n) { return n == 6000; }) &&
                              std::all_of(test_count.begin(), test_count.end(), [](auto n) { return n == 1000; });
        fmt::print("\n");
        verifier.check("balanced: 6,000 + 1,000 per class", balanced);
    }
    {
        const std::size_t i = 0;
        const Tensor gray = row(train.pixels, i) * (1.0 / 255);
        fmt::print("\nTraining image {} (label {}, {}), pixel value v/255 as \" .:-=+*#%@\":\n\n", i, train.labels[i],
                   classes.at(train.labels[i]));
        print_indented(ascii_image(gray.span()));
    }
    const std::string data_path = (out_dir / "data.svg").string();
    {
        // One panel per class holding a column of its first images: one picture per panel, which the
        // plotting helper embeds as a small PNG instead of a square per pixel.
        constexpr std::size_t per_class = 5;
        plot::Figure fig(1, 10, image_panel_width, 3 * (per_class * (side + 2) - 2) + 30);
        fig.title("Fashion-MNIST: the first training images of each class");
        for (std::size_t c = 0; c < 10; ++c) {
            std::vector<std::size_t> picks;
            for (std::size_t i = 0; i < n_train && picks.size() < per_class; ++i)
                if (train.labels[i] == c) picks.push_back(i);
            const Mosaic m = tile(index_select(train.pixels, 0, picks) * (1.0 / 255), per_class, 1);
            fig.axes(0, static_cast<int>(c)).image(m.pixels, m.height, m.width).set_title(classes[c]);
        }
        fig.save(data_path);
    }
    fmt::print("\nFigure: {} (five images of each class).\n", data_path);

    // ------------------------------------------------------------------------------------------
    verifier.section("Dequantization and the logit");
    const Tensor v8 = narrow(train.pixels, 0, 0, 8);
    const Tensor x8 = flows::dequantize(v8, look_rng);
    fmt::print(
        "A density on R^D cannot be fitted to integers: it would put infinite density on each of the\n"
        "256^D points. Dequantization spreads each pixel v over its own interval [v/256, (v + 1)/256):\n\n"
        "    x = (v + u)/256,   u ~ U(0, 1)^D                                     flows::dequantize\n\n"
        "A flow ending in a sigmoid would need y → ±∞ for x near 0 or 1, and most Fashion-MNIST pixels\n"
        "are exactly 0. The logit transform of RealNVP (Sec. 4.1) keeps a margin α = {}:\n\n"
        "    p = α + (1 − 2α)·x,   y = logit p = log p − log(1 − p)              flows::LogitPreprocessing\n"
        "    log|dy/dx| = log(1 − 2α) − log p − log(1 − p)   per pixel            (docs/theory.md §6)\n\n"
        "so y stays within ±logit(α) = ±{:.4f}. On the first 8 training images:\n\n",
        alpha, std::log((1 - alpha) / alpha));
    {
        bool inside = true;
        for (std::size_t i = 0; i < x8.numel(); ++i) inside = inside && std::floor(256 * x8[i]) == v8[i];
        verifier.check("⌊256·x⌋ = v for every pixel", inside,
                       fmt::format("x from {:.6f} to {:.6f}", min(x8).item(), max(x8).item()));
    }
    flows::LogitPreprocessing logit(alpha);
    Tensor y8, log_det8;
    {
        NoGrad no_grad;
        const flows::Transformed t = logit.inverse(Var(x8));
        y8 = t.value.value();
        log_det8 = t.log_abs_det_jacobian.value();
        // The map is elementwise, so its Jacobian is diagonal and one central difference of the whole
        // batch, x ± h in every pixel at once, gives every dy_d/dx_d.
        const double h = 1e-6;
        const Tensor y_plus = logit.inverse(Var(x8 + h)).value.value(), y_minus = logit.inverse(Var(x8 - h)).value.value();
        double worst = -1, worst_formula = 0, worst_fd = 0;
        Tensor formula_sum = Tensor::zeros(Shape{8});
        for (std::size_t i = 0; i < x8.numel(); ++i) {
            const double p = alpha + (1 - 2 * alpha) * x8[i];
            const double formula = std::log(1 - 2 * alpha) - std::log(p) - std::log(1 - p);
            const double fd = std::log((y_plus[i] - y_minus[i]) / (2 * h));
            if (std::abs(fd - formula) > worst) {
                worst = std::abs(fd - formula);
                worst_formula = formula;
                worst_fd = fd;
            }
            formula_sum[i / dim] += formula;
        }
        fmt::print(
            "\nPer pixel, the formula against log of the central difference (y(x + h) − y(x − h))/2h,\n"
            "h = 1e-6, over all {} pixels (the worst one):\n\n",
            x8.numel());
        verifier.check_close("log|dy/dx|, worst pixel", {"formula", worst_formula}, {"log central diff.", worst_fd}, 0,
                             1e-7);
        fmt::print("\nPer image, the library's Σ_d log|dy/dx| against the sum of the formula (image 0: {:.6f}\n"
                   "vs {:.6f}), the worst of the 8 relative to the largest sum:\n\n",
                   log_det8[0], formula_sum[0]);
        verifier.check_error("max |Σ log|dy/dx| − Σ formula| / max|Σ|",
                             max_abs_diff(log_det8, formula_sum) / max(abs(formula_sum)).item(), 1e-13);
        const flows::Transformed back = logit.forward(Var(y8));
        fmt::print("\nAnd back, x = (σ(y) − α)/(1 − 2α), whose log-det is minus the one above:\n\n");
        verifier.check_error("max |x − forward(inverse(x))|", max_abs_diff(back.value.value(), x8), 1e-15);
        verifier.check_error("max |log-det forward + inverse|",
                             max_abs_diff(back.log_abs_det_jacobian.value(), -log_det8), 1e-10);
    }
    const double log256 = std::log(256.0);
    fmt::print(
        "\nBits per dimension. A density p_y(y) on the logit side gives the dequantized image the density\n"
        "p_x(x) = p_y(y)·|dy/dx|. The discrete image v owns the cube [v/256, (v + 1)/256)^D of volume\n"
        "256^−D, so P(v) = ∫ p_x over the cube, and by Jensen log P(v) ≥ E_u[log p_x((v + u)/256)] − D log 256.\n"
        "One dequantization draw per image estimates that bound:\n\n"
        "    log p(v) ≈ log p_y(y) + Σ log|dy/dx| − D log 256,      bits/dim = −log p(v) / (D ln 2)\n\n"
        "with D log 256 = {:.4f} nats. Lower is better; a model that gives every pixel value the same\n"
        "probability 1/256 needs exactly log2 256 = 8 bits per pixel.\n\n"
        "flows::bits_per_dim(log p_y, Σ log|dy/dx|, D) is that formula. It is checked on a model small\n"
        "enough that P(v) is exact: D = 2 pixels and a diagonal Gaussian y ~ N(μ, diag σ²) on the logit\n"
        "side, μ = ({}, {}), σ = ({}, {}). y is increasing in x, so each pixel's bin maps to an interval\n"
        "of y and P(v) = Π_d [Φ((y_d⁺ − μ_d)/σ_d) − Φ((y_d⁻ − μ_d)/σ_d)], y_d^± the logit of the bin's\n"
        "edges (by hand, without the library's map). The dequantized estimate is bits_per_dim averaged\n"
        "over u on a 64×64 grid of midpoints of the bin (no sampling noise to hide the gap); Jensen says\n"
        "the exact −log₂ P(v)/D lies below it:\n\n",
        dim * log256, jensen_mu[0], jensen_mu[1], jensen_sigma[0], jensen_sigma[1]);
    {
        flows::LogitPreprocessing two_pixels(alpha);
        auto phi = [](double y) { return 0.5 * std::erfc(-y / std::numbers::sqrt2); };
        auto logit_by_hand = [&](double x) {
            const double p = alpha + (1 - 2 * alpha) * x;
            return std::log(p) - std::log1p(-p);
        };
        constexpr std::size_t n_u = 64;
        double largest_gap = 0;
        std::vector<std::vector<std::string>> rows;
        struct Bound {
            std::string v;
            double exact, estimate;
        };
        std::vector<Bound> bounds;
        for (const auto& v : std::vector<std::array<double, 2>>{{0, 0}, {37, 200}, {128, 128}, {255, 3}}) {
            double log_p_exact = 0;
            for (std::size_t d = 0; d < 2; ++d)
                log_p_exact += std::log(phi((logit_by_hand((v[d] + 1) / 256) - jensen_mu[d]) / jensen_sigma[d]) -
                                        phi((logit_by_hand(v[d] / 256) - jensen_mu[d]) / jensen_sigma[d]));
            const double exact_bits = -log_p_exact / (2 * std::numbers::ln2);
            Tensor x(Shape{n_u * n_u, 2});
            for (std::size_t i = 0; i < n_u; ++i)
                for (std::size_t j = 0; j < n_u; ++j) {
                    x.at({i * n_u + j, 0}) = (v[0] + (static_cast<double>(i) + 0.5) / n_u) / 256;
                    x.at({i * n_u + j, 1}) = (v[1] + (static_cast<double>(j) + 0.5) / n_u) / 256;
                }
            NoGrad no_grad;
            const flows::Transformed t = two_pixels.inverse(Var(x));
            const Tensor y = t.value.value();
            Tensor log_p_y = Tensor::zeros(Shape{n_u * n_u});
            for (std::size_t k = 0; k < n_u * n_u; ++k)
                for (std::size_t d = 0; d < 2; ++d) {
                    const double r = (y.at({k, d}) - jensen_mu[d]) / jensen_sigma[d];
                    log_p_y[k] += -0.5 * r * r - std::log(jensen_sigma[d]) - 0.5 * std::log(2 * std::numbers::pi);
                }
            const double estimate = mean(flows::bits_per_dim(log_p_y, t.log_abs_det_jacobian.value(), 2)).item();
            largest_gap = std::max(largest_gap, estimate - exact_bits);
            rows.push_back({fmt::format("({:g}, {:g})", v[0], v[1]), fmt::format("{:.6f}", exact_bits),
                            fmt::format("{:.6f}", estimate), fmt::format("{:.2e}", estimate - exact_bits)});
            bounds.push_back({fmt::format("({:g}, {:g})", v[0], v[1]), exact_bits, estimate});
        }
        print_indented(plot::ascii_table({"v", "exact −log₂ P(v)/D", "dequantized bits/dim", "gap"}, rows));
        fmt::print("\n");
        for (const Bound& b : bounds)
            verifier.check_at_most(fmt::format("Jensen at v = {}", b.v), {"exact −log₂P/D", b.exact}, {"dequantized", b.estimate});
        fmt::print(
            "\nThe gap is small because a bin is narrow: log p_x barely varies across it (the gap is about\n"
            "half its variance over the bin). A wrong constant in bits_per_dim (a missing D log 256, or nats\n"
            "for bits) would be off by whole bits:\n\n");
        verifier.check_error("largest gap (bits/dim)", largest_gap, 0.01);
    }
    double gaussian_bits = 0;
    {
        // The untrained flow: y ~ N(0, I) on the logit side. log N(y) = −½‖y‖² − (D/2) log 2π.
        Tensor log_normal(Shape{8});
        for (std::size_t i = 0; i < 8; ++i) {
            double sq = 0;
            for (std::size_t d = 0; d < dim; ++d) sq += y8[i * dim + d] * y8[i * dim + d];
            log_normal[i] = -0.5 * sq - 0.5 * dim * std::log(2 * std::numbers::pi);
        }
        gaussian_bits = mean(flows::bits_per_dim(log_normal, log_det8, dim)).item();
        fmt::print(
            "\nA standard normal on the logit side (what the untrained flow is, section 3) scores\n"
            "{:.4f} bits/dim on these 8 images: worse than uniform, because it spreads its mass over all\n"
            "of R^D while y never leaves [−{:.3f}, {:.3f}]^D. Training has to beat 8 by learning.\n",
            gaussian_bits, std::log((1 - alpha) / alpha), std::log((1 - alpha) / alpha));
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The model");
    std::unique_ptr<flows::Flow> flow_ptr = make_mlp_realnvp(s.couplings, s.hidden, s.norm, init_seed);
    flows::Flow& flow = *flow_ptr;
    fmt::print(
        "make_realnvp({{.dim = 784, .couplings = {}, .hidden = {{{}, {}}}, .mask = checkerboard, .height = 28,\n"
        "              .width = 28, .norm = {}}}), then LogitPreprocessing(α = {}) added as the last layer\n"
        "(latent → data), so flow.log_prob(x) already holds Σ log|dy/dx| and bits_per_dim takes it with\n"
        "0 for the log-det. The layers, latent z first:\n\n",
        s.couplings, s.hidden, s.hidden, flows::to_string(s.norm), alpha);
    for (std::size_t k = 0; k < flow.size(); ++k)
        fmt::print("    layers.{:<2} {:<52} {:>9} parameters\n", k, flow.layer(k).name(), flow.layer(k).parameter_count());
    const std::size_t h = s.hidden;
    const std::size_t per_coupling = dim + (dim * h + h) + (h * h + h) + (h * 2 * dim + 2 * dim);
    const std::size_t per_norm = s.norm == flows::Normalization::none ? 0 : 2 * dim;
    const std::size_t formula_count = s.couplings * per_coupling + (s.couplings - 1) * per_norm;
    fmt::print(
        "\nEach coupling: a scale vector [784] and the conditioner MLP 784 → {} → {} → 1568 (ReLU), whose\n"
        "output is split into s_raw and t; s = scale ⊙ tanh(s_raw). Its summary:\n\n",
        h, h);
    print_indented(flow.layer(0).summary());
    fmt::print(
        "\nCount: {} · (784 + (784·{h} + {h}) + ({h}·{h} + {h}) + ({h}·1568 + 1568)){}\n\n", s.couplings,
        per_norm ? fmt::format(" + {} · 2·784", s.couplings - 1) : "", fmt::arg("h", h));
    verifier.check_close("parameter count", {"flow", static_cast<double>(flow.parameter_count())},
                         {"formula", static_cast<double>(formula_count)}, 0, 0);
    {
        const Tensor b0 = flows::checkerboard_mask(side, side, 0), b1 = flows::checkerboard_mask(side, side, 1);
        std::string picture;
        for (std::size_t r = 0; r < 6; ++r) {
            for (std::size_t c = 0; c < 10; ++c) picture += b0[r * side + c] == 1 ? "■ " : "· ";
            picture += "      ";
            for (std::size_t c = 0; c < 10; ++c) picture += b1[r * side + c] == 1 ? "■ " : "· ";
            picture += "\n";
        }
        fmt::print(
            "\nThe masks, top-left corner (■ copied: b = 1, · updated), parity 0 (b = 1 where row + col is\n"
            "odd) and parity 1 (its complement). Coupling j uses parity j mod 2:\n\n");
        print_indented(picture);
        bool complementary = true, neighbours = true, alternate = true;
        for (std::size_t d = 0; d < dim; ++d) complementary = complementary && b0[d] + b1[d] == 1;
        // Every updated pixel's 4 neighbours are copied: each pixel is transformed using the pixels
        // around it, the most informative conditioning a single checkerboard allows.
        for (std::size_t r = 0; r < side; ++r)
            for (std::size_t c = 0; c < side; ++c) {
                if (b0[r * side + c] == 1) continue;
                if (r > 0) neighbours = neighbours && b0[(r - 1) * side + c] == 1;
                if (r + 1 < side) neighbours = neighbours && b0[(r + 1) * side + c] == 1;
                if (c > 0) neighbours = neighbours && b0[r * side + c - 1] == 1;
                if (c + 1 < side) neighbours = neighbours && b0[r * side + c + 1] == 1;
            }
        std::size_t j = 0;
        for (std::size_t k = 0; k < flow.size(); ++k)
            if (auto* c = dynamic_cast<flows::AffineCoupling*>(&flow.layer(k)))
                alternate = alternate && equal(c->mask(), j++ % 2 == 0 ? b0 : b1);
        verifier.check("the two masks are complementary", complementary, fmt::format("{} + {} of 784 copied",
                                                                                   sum(b0).item(), sum(b1).item()));
        verifier.check("updated pixels: 4 neighbours all copied", neighbours);
        verifier.check("couplings alternate parity 0, 1, 0, …", alternate, fmt::format("{} couplings", j));
    }

    fmt::print(
        "\nThe coupling's Jacobian is triangular (docs/theory.md §5), so log|det| = Σ_j (1 − b_j)·s_j instead\n"
        "of an O(D³) determinant. A 784×784 Jacobian per image is too expensive to check here, so the\n"
        "structure is checked on a 16-D checkerboard coupling of a 4×4 image, with random parameters\n"
        "(all N(0, 0.5²), so s and t are far from zero), at a random x: J = ∂z/∂x of inverse (data →\n"
        "latent) by the tape, one backward pass per row, against central differences (ε = 1e-6):\n\n");
    {
        flows::AffineCoupling small(flows::checkerboard_mask(4, 4, 0), {32, 32}, check_rng);
        for (Parameter* p : small.parameters()) p->value = randn(p->value.shape(), check_rng, 0, 0.5);
        const Tensor x16 = randn(Shape{1, 16}, check_rng);
        const auto inverse_of = [&small](const Var& x) { return small.inverse(x).value; };
        const Tensor jac = jacobian(inverse_of, x16);
        Tensor jac_fd(Shape{16, 16});
        {
            NoGrad no_grad;
            const double eps = 1e-6;
            for (std::size_t j = 0; j < 16; ++j) {
                Tensor plus = x16.clone(), minus = x16.clone();
                plus[j] += eps;
                minus[j] -= eps;
                const Tensor diff = (small.inverse(Var(plus)).value.value() - small.inverse(Var(minus)).value.value()) * (0.5 / eps);
                for (std::size_t i = 0; i < 16; ++i) jac_fd.at({i, j}) = diff[i];
            }
        }
        const Tensor& b = small.mask();
        // Copied coordinates first, then updated: in that order J is lower triangular with the
        // identity on the copied block and diag(exp s) on the updated one.
        std::vector<std::size_t> order;
        for (std::size_t j = 0; j < 16; ++j)
            if (b[j] == 1) order.push_back(j);
        for (std::size_t j = 0; j < 16; ++j)
            if (b[j] == 0) order.push_back(j);
        std::string pattern;
        std::size_t structural_zeros = 0, exact_zeros = 0;
        for (const std::size_t i : order) {
            for (const std::size_t j : order) {
                const bool may_depend = i == j || (b[i] == 0 && b[j] == 1);
                if (!may_depend) {
                    ++structural_zeros;
                    exact_zeros += jac.at({i, j}) == 0 ? 1 : 0;
                }
                pattern += jac.at({i, j}) != 0 ? "# " : "· ";
            }
            pattern += "\n";
        }
        fmt::print("J with rows and columns reordered copied-first (# nonzero, · exactly zero):\n\n");
        print_indented(pattern);
        fmt::print("\n");
        verifier.check_error("max |tape J − central diff.|", max_abs_diff(jac, jac_fd), 1e-8);
        verifier.check("zeros where z_i cannot depend on x_j", exact_zeros == structural_zeros,
                       fmt::format("{} of {} entries exactly 0", exact_zeros, structural_zeros));
        NoGrad no_grad;
        const flows::AffineCoupling::ScaleShift st = small.scale_shift(Var(x16));
        double worst_diag = 0, sum_s = 0;
        for (std::size_t j = 0; j < 16; ++j) {
            const double expected = b[j] == 1 ? 1.0 : std::exp(st.s.value()[j]);
            worst_diag = std::max(worst_diag, std::abs(jac.at({j, j}) - expected));
            sum_s += st.s.value()[j];
        }
        const flows::Transformed inv = small.inverse(Var(x16));
        const SignLogDet sld = slogdet(jac);
        fmt::print("\n");
        verifier.check_error("max |J_jj − (b_j ? 1 : exp s_j)|", worst_diag, 1e-15);
        verifier.check_close("log|det J|", {"slogdet(tape J)", sld.log_abs_det},
                             {"inverse's log-det", inv.log_abs_det_jacobian.item()}, 1e-13, 1e-14);
        verifier.check_close("log|det J|", {"Σ_j s_j (updated)", sum_s}, {"inverse's log-det", inv.log_abs_det_jacobian.item()},
                             1e-15, 1e-15);
        verifier.check("det J > 0", sld.sign == 1, fmt::format("sign {:+}", sld.sign));
    }
    {
        // The forward direction at z = inverse(x): its Jacobian is the inverse matrix, log-det negated.
        flows::AffineCoupling small(flows::checkerboard_mask(4, 4, 1), {32, 32}, check_rng);
        for (Parameter* p : small.parameters()) p->value = randn(p->value.shape(), check_rng, 0, 0.5);
        const Tensor x16 = randn(Shape{1, 16}, check_rng);
        Tensor z16;
        double inverse_log_det = 0;
        {
            NoGrad no_grad;
            const flows::Transformed inv = small.inverse(Var(x16));
            z16 = inv.value.value();
            inverse_log_det = inv.log_abs_det_jacobian.item();
        }
        const Tensor jac_forward = jacobian([&small](const Var& z) { return small.forward(z).value; }, z16);
        const Tensor jac_inverse = jacobian([&small](const Var& x) { return small.inverse(x).value; }, x16);
        Tensor identity = Tensor::zeros(Shape{16, 16});
        for (std::size_t i = 0; i < 16; ++i) identity.at({i, i}) = 1;
        fmt::print("\nThe parity-1 coupling, forward (latent → data) at z = inverse(x):\n\n");
        verifier.check_close("log|det J_forward|", {"slogdet(tape J)", slogdet(jac_forward).log_abs_det},
                             {"−inverse's log-det", -inverse_log_det}, 1e-13, 1e-14);
        verifier.check_error("max |J_forward·J_inverse − I|", max_abs_diff(matmul(jac_forward, jac_inverse), identity),
                             1e-13);
    }

    fmt::print(
        "\nThe whole 784-D flow, on 8 real test images. A fresh flow is the identity on the logit side\n"
        "(every conditioner's last layer is zero), so for this check a second flow of the same\n"
        "architecture has N(0, {}²) noise added to every parameter: every coupling transforms.\n"
        "x → z = flow.inverse(x) → flow.forward(z):\n\n",
        perturb_std);
    {
        std::unique_ptr<flows::Flow> scrambled = make_mlp_realnvp(s.couplings, s.hidden, s.norm, init_seed + 1);
        tutorial::perturb_parameters(*scrambled, check_rng, perturb_std);
        scrambled->eval();
        NoGrad no_grad;
        const Tensor x = flows::dequantize(narrow(test.pixels, 0, 0, 8), check_rng);
        const flows::Transformed inv = scrambled->inverse(Var(x));
        const flows::Transformed fwd = scrambled->forward(inv.value);
        // The flow's log-det is the sum of its layers': walk them by hand from the data side.
        Var u(x);
        Tensor by_layer = Tensor::zeros(Shape{8});
        for (std::size_t k = scrambled->size(); k-- > 0;) {
            const flows::Transformed t = scrambled->layer(k).inverse(u);
            by_layer += t.log_abs_det_jacobian.value();
            u = t.value;
        }
        const double ld_scale = max(abs(inv.log_abs_det_jacobian.value())).item();
        verifier.check_error("max |x − forward(inverse(x))|", max_abs_diff(fwd.value.value(), x), 1e-10);
        verifier.check_error("max |log-det inverse + forward|",
                             max_abs_diff(inv.log_abs_det_jacobian.value(), -fwd.log_abs_det_jacobian.value()),
                             1e-12 * ld_scale);
        verifier.check_error("max |flow log-det − Σ layers'|", max_abs_diff(inv.log_abs_det_jacobian.value(), by_layer),
                             1e-12 * ld_scale);
        verifier.check("the couplings do transform", max_abs_diff(inv.value.value(), logit.inverse(Var(x)).value.value()) > 0.1,
                       fmt::format("max |z − logit side of x| = {:.3g}", max_abs_diff(inv.value.value(),
                                                                                      logit.inverse(Var(x)).value.value())));
        fmt::print("    (log-dets of these images are around {:.1f} nats)\n", ld_scale);
    }
    {
        // The untrained flow is N(0, I) on the logit side: section 2's numbers, through Flow::log_prob.
        flow.eval();  // evaluation mode: ActNorm must not initialize on this batch
        NoGrad no_grad;
        const double untrained = mean(bits_per_image(flow.log_prob(Var(x8)).value())).item();
        flow.train();
        fmt::print("\nThe untrained flow on section 2's 8 images, through flow.log_prob and bits_per_dim(·, 0, D):\n\n");
        // An untrained BatchNorm in evaluation mode is not exactly the identity: it divides by
        // sqrt(running_var + ε) = sqrt(1 + 1e-5), which moves the score by about 1e-5 relative.
        const bool batchnorm = s.norm == flows::Normalization::batchnorm;
        verifier.check_close(batchnorm ? "bits/dim (up to BatchNorm's ε)" : "bits/dim of the untrained flow",
                             {"flow.log_prob", untrained}, {"N(0, I) by hand", gaussian_bits}, batchnorm ? 1e-4 : 1e-13, 0);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Training, checkpoints and --resume");
    nn::Adam optimizer(flow.parameters(), {.lr = s.lr});
    // A short linear warm-up: Adam's first updates move every parameter by about lr whatever its
    // gradient, and the first coupling on the data side sees background pixels whose spread is
    // tiny (0.9/256 on the x side); a full-size step there, amplified by the ActNorm after it, sends
    // the loss from 7 to 30 bits/dim before it recovers.
    const nn::LinearWarmup schedule(nn::CosineAnnealing(s.lr, s.steps, 0.0), s.warmup, 1.0 / static_cast<double>(s.warmup));
    std::vector<double> history;  // bits/dim of every training batch since step 1
    std::uint64_t start_step = 0;
    const nn::CheckpointConfig config = mlp_realnvp_config(s, opt);
    if (s.resume) {
        std::uint64_t stored_step = 0;
        Tensor stored_history;
        nn::load_checkpoint(ckpt_path, flow, training_state(optimizer, stored_step, &stored_history, &config));
        optimizer.set_step_count(stored_step);
        start_step = stored_step;
        history = stored_history.to_vector();
        fmt::print("Resumed from {}: step {}, the last batch at {:.4f} bits/dim.\n\n", ckpt_path, start_step,
                   history.empty() ? std::nan("") : history.back());
    }
    fmt::print(
        "{} steps of Adam (lr {:g}, warmed up linearly over {} steps, cosine-annealed to 0 at step {}) on\n"
        "batches of {} images drawn with replacement from the {} training images, freshly dequantized\n"
        "each time. Each step:\n\n"
        "    Tensor x = dequantize(batch(step), rng(step));     // the batch depends on the step only\n"
        "    schedule.apply(optimizer);  optimizer.zero_grad();\n"
        "    Var loss = -mean(flow.log_prob(x));                // nats per image\n"
        "    tape.backward(loss);  optimizer.step();  tape.clear();\n\n"
        "Every {} steps (and at the end) save_checkpoint writes {} atomically: the\n"
        "parameters, Adam's m and v, the layers' buffers, the step and the loss history. The progress\n"
        "line shows the running bits/dim of the training batches. {} thread{} (set_num_threads).\n\n",
        s.steps, s.lr, s.warmup, s.steps, s.batch, thousands(n_train), s.checkpoint_every, ckpt_path, threads,
        threads == 1 ? "" : "s");
    if (!s.resume && std::filesystem::exists(ckpt_path))
        fmt::print("(A checkpoint from an earlier run is at {}: the first save replaces it. --resume would\n"
                   "continue from it instead.)\n\n", ckpt_path);
    if (start_step >= s.steps)
        fmt::print("The checkpoint is already at step {} ≥ --steps {}: nothing left to train.\n\n", start_step, s.steps);

    // The resume check: at the first checkpoint this run saves, a twin flow (initialized from another
    // seed, so only the loaded values can make it agree) loads it with a fresh Adam and takes the next
    // steps itself; the main run must then produce the same losses and parameters bit for bit.
    std::unique_ptr<flows::Flow> twin;
    std::unique_ptr<nn::Adam> twin_optimizer;
    std::vector<double> twin_losses;
    std::uint64_t twin_from = 0;
    double twin_parameter_diff = std::numeric_limits<double>::quiet_NaN();
    std::size_t checkpoints_saved = 0;
    nn::CheckpointInfo first_info;

    if (start_step == 0 && s.norm == flows::Normalization::actnorm) {
        // ActNorm initializes on the first training-mode inverse pass it sees. On a training batch of
        // 32 or 64 images, a pixel that happens to be background in all of them gets a spread of
        // 0.9/256/√12 ≈ 0.001 before the logit (≈ 0.021 after it) and a scale of about 1/0.021; the
        // first later image with ink there then costs tens of bits/dim. So the tutorial initializes on 1,000 images first (the
        // "step 0" batch: reproducible, and restored from the checkpoint on --resume).
        NoGrad no_grad;
        flow.log_prob(Var(training_batch(train.pixels, std::min<std::size_t>(1000, n_train), data_seed, 0)));
        fmt::print("ActNorm layers initialized on 1,000 training images (data-dependent initialization).\n\n");
    }
    const double train_cpu_start = cpu_seconds(), train_wall_start = wall_seconds();
    std::uint64_t last_step = start_step;
    std::optional<std::uint64_t> last_saved_step;
    if (s.resume) last_saved_step = start_step;
    if (start_step < s.steps) {
        nn::Progress progress(s.steps, {.label = "bits/dim", .initial_step = start_step});
        for (std::uint64_t step = start_step + 1; step <= s.steps; ++step) {
            const double bits = train_step(flow, optimizer, schedule, train.pixels, s.batch, data_seed, step);
            // A diverged run stops here, before anything is saved: the last checkpoint stays the
            // last good one (save_checkpoint would refuse the NaNs anyway, naming the tensor).
            if (!std::isfinite(bits) || !all_finite(flow, optimizer))
                throw std::runtime_error(diverged_message(step, bits, ckpt_path, last_saved_step));
            history.push_back(bits);
            last_step = step;
            if (step % s.checkpoint_every == 0 || step == s.steps) {
                std::uint64_t stored_step = step;
                Tensor stored_history(Shape{history.size()}, history);
                nn::save_checkpoint(ckpt_path, flow, training_state(optimizer, stored_step, &stored_history, &config));
                last_saved_step = step;
                if (checkpoints_saved++ == 0 && step + resume_check_steps <= s.steps) {
                    first_info = nn::read_checkpoint_info(ckpt_path);
                    twin = make_mlp_realnvp(s.couplings, s.hidden, s.norm, init_seed + 2);
                    twin_optimizer = std::make_unique<nn::Adam>(twin->parameters(), nn::AdamOptions{.lr = s.lr});
                    std::uint64_t loaded_step = 0;
                    Tensor loaded_history;
                    nn::load_checkpoint(ckpt_path, *twin, training_state(*twin_optimizer, loaded_step, &loaded_history, &config));
                    twin_optimizer->set_step_count(loaded_step);
                    twin_from = loaded_step;
                    for (std::uint64_t t = loaded_step + 1; t <= loaded_step + resume_check_steps; ++t)
                        twin_losses.push_back(
                            train_step(*twin, *twin_optimizer, schedule, train.pixels, s.batch, data_seed, t));
                }
            }
            if (twin && step == twin_from + resume_check_steps) {
                twin_parameter_diff = max_parameter_diff(flow, *twin);
                twin.reset();  // its parameters and Adam state: as large as the model's
                twin_optimizer.reset();
            }
            if (!progress.update(step, bits)) break;
        }
        progress.finish();
    }
    const double train_wall = wall_seconds() - train_wall_start, train_cpu = cpu_seconds() - train_cpu_start;
    const std::uint64_t steps_run = last_step - start_step;
    if (steps_run > 0)
        fmt::print(
            "\n{} steps in {:.1f} s wall, {:.1f} s CPU ({:.3f} s per step, {:.2f} steps/s; CPU/wall {:.2f}).\n",
            steps_run, train_wall, train_cpu, train_wall / steps_run, steps_run / train_wall, train_cpu / train_wall);
    print_training_curve(history);
    fmt::print("\n");
    const bool all_finite = std::all_of(history.begin(), history.end(), [](double b) { return std::isfinite(b); });
    verifier.check("every training loss finite", all_finite && history.size() == last_step,
                   fmt::format("{} steps recorded", history.size()));
    if (!twin_losses.empty()) {
        fmt::print(
            "\nThe checkpoint of step {} ({} entries: {} parameter tensors, Adam's m and v for each, {} layer\n"
            "buffers, the history; {:.1f} MB). A twin loaded it and took steps {}..{} itself:\n\n",
            twin_from, first_info.entries.size(), flow.parameters().size(), flow.named_buffers().size(),
            static_cast<double>(first_info.file_bytes) / 1e6, twin_from + 1, twin_from + resume_check_steps);
        verifier.check_close("checkpoint entries", {"in the file", static_cast<double>(first_info.entries.size())},
                             {"3·params + buffers + 1",
                              static_cast<double>(3 * flow.parameters().size() + flow.named_buffers().size() + 1)},
                             0, 0);
        verifier.check("stored step", first_info.step && *first_info.step == twin_from,
                       fmt::format("{}", first_info.step.value_or(0)));
        check_resumed_run(verifier, history, twin_from, twin_losses, twin_parameter_diff);
    } else if (steps_run > 0) {
        fmt::print("(No resume check in this run: it needs a checkpoint at least {} steps before --steps.)\n",
                   resume_check_steps);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Test bits per dimension");
    flow.eval();
    const double eval_wall_start = wall_seconds();
    const Tensor test_bits = evaluate_bits(flow, test.pixels, eval_rng);
    const double eval_wall = wall_seconds() - eval_wall_start;
    const double test_mean = mean(test_bits).item();
    const double test_se = std::sqrt(mean(square(test_bits - test_mean)).item() / static_cast<double>(n_test));
    const Tensor train_bits = evaluate_bits(flow, narrow(train.pixels, 0, 0, std::min(n_train, n_test)), eval_rng);
    const double train_mean = mean(train_bits).item();
    fmt::print(
        "flow.eval(), then under NoGrad, batches of 500: one dequantization draw per image, log p(x) by\n"
        "flow.log_prob, bits/dim per image. {} test images in {:.1f} s:\n\n"
        "    test   {:.4f} ± {:.4f} bits/dim  (± one standard error over images)\n"
        "    train  {:.4f} bits/dim on the first {} training images (a gap would show overfitting)\n\n",
        thousands(n_test), eval_wall, test_mean, test_se, train_mean, thousands(train_bits.numel()));
    {
        std::vector<double> class_bits(10, 0.0);
        std::vector<std::size_t> class_n(10, 0);
        for (std::size_t i = 0; i < n_test; ++i) {
            class_bits[test.labels[i]] += test_bits[i];
            ++class_n[test.labels[i]];
        }
        std::vector<std::vector<std::string>> rows;
        for (std::size_t c = 0; c < 10; ++c)
            rows.push_back({classes[c], fmt::format("{}", class_n[c]),
                            class_n[c] ? fmt::format("{:.4f}", class_bits[c] / class_n[c]) : "-"});
        fmt::print("Per class (simple shapes on a black background are cheap; textured ones cost bits):\n\n");
        print_indented(plot::ascii_table({"class", "images", "bits/dim"}, rows));
        fmt::print("\n");
    }
    {
        bool finite = true;
        for (const double b : test_bits.span()) finite = finite && std::isfinite(b);
        verifier.check("every test bits/dim finite", finite);
        verifier.check_at_most("test bits/dim (sanity bound)", {"flow", test_mean}, {"uniform model", 8.0});
        verifier.check("test bits/dim < the untrained flow's", test_mean < gaussian_bits,
                       fmt::format("{:.4f} < {:.4f}", test_mean, gaussian_bits));
        // Evaluation mode: an image's score must not depend on the batch it was scored in.
        NoGrad no_grad;
        Rng again(17);
        const Tensor x = flows::dequantize(narrow(test.pixels, 0, 0, 4), again);
        const Tensor together = bits_per_image(flow.log_prob(Var(x)).value());
        double worst = 0;
        for (std::size_t i = 0; i < 4; ++i)
            worst = std::max(worst, std::abs(bits_per_image(flow.log_prob(Var(row(x, i))).value())[0] - together[i]));
        verifier.check_error("max |bits/dim alone − in a batch of 4|", worst, 1e-12);
        // The default run reached 3.82 bits/dim (seed 0, see the .md); 4.2 leaves room for other
        // seeds and thread counts while still catching a training that went wrong.
        if (!opt.quick && last_step >= 15'000 && s.hidden >= 256 && s.couplings >= 6)
            verifier.check("test bits/dim < 4.2 (default budget)", test_mean < 4.2, fmt::format("{:.4f}", test_mean));
    }
    const std::string curve_path = (out_dir / "training.svg").string();
    if (!history.empty()) {
        plot::Figure fig(1, 1, 720, 440);
        plot::Axes& ax = fig.axes(0, 0);
        // At most ~2000 points per line: a long run would otherwise make the SVG megabytes of path.
        const std::vector<double> smooth = running_mean(history);
        const std::size_t stride = (history.size() + 1999) / 2000;
        std::vector<double> steps_axis, raw, trend;
        for (std::size_t i = 0; i < history.size(); i += stride) {
            steps_axis.push_back(static_cast<double>(i + 1));
            raw.push_back(history[i]);
            trend.push_back(smooth[i]);
        }
        const double top = std::max(8.5, std::min(12.0, std::ceil(*std::max_element(trend.begin(), trend.end()))));
        ax.set_title(fmt::format("RealNVP on Fashion-MNIST: {} couplings, hidden {}, batch {}", s.couplings, s.hidden,
                                 s.batch));
        ax.set_xlabel("step").set_ylabel("bits per dimension");
        ax.set_ylim(std::floor(std::min(test_mean, train_mean)) - 0.5, top);
        ax.line(steps_axis, raw, {.colour = "#9ecae1", .width = 0.8,
                                  .label = stride == 1 ? "training batch" : fmt::format("training batch (every {})", stride)});
        ax.line(steps_axis, trend, {.colour = "#1f77b4", .width = 1.8,
                                    .label = fmt::format("mean of the last {} batches",
                                                         std::clamp<std::size_t>(history.size() / 20, 1, 50))});
        ax.hline(8, {.colour = "#555555", .width = 1.2, .dashed = true, .label = "uniform model: 8 bits/dim"});
        ax.hline(test_mean, {.colour = "#d62728", .width = 1.4, .dashed = true,
                             .label = fmt::format("test: {:.3f} bits/dim", test_mean)});
        ax.legend();
        fig.save(curve_path);
        fmt::print("\nFigure: {} (the training curve with the test score).\n", curve_path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Samples and reconstructions");
    constexpr std::size_t sample_rows = 4, sample_cols = 8, png_side = 8;
    const std::vector<double> temperatures = {0.7, 1.0};
    fmt::print(
        "Sampling runs the flow forward: z ~ N(0, T²·I), x = flow.forward(z), which ends in the\n"
        "de-logit x = (σ(y) − α)/(1 − 2α). x lies in (−α/(1 − 2α), (1 − α)/(1 − 2α)) ⊃ [0, 1]; clamped\n"
        "to [0, 1] for display. Temperature T < 1 trades variety for cleaner images (Glow, Sec. 5).\n\n");
    std::vector<Tensor> samples;
    {
        NoGrad no_grad;
        for (const double t : temperatures) {
            const Tensor z = randn(Shape{png_side * png_side, dim}, sample_rng, 0, t);
            samples.push_back(flow.forward(Var(z)).value.value());
        }
    }
    {
        std::vector<std::vector<std::string>> rows;
        bool finite = true;
        for (std::size_t k = 0; k < temperatures.size(); ++k) {
            const Tensor& x = samples[k];
            std::size_t outside = 0;
            for (const double v : x.span()) {
                finite = finite && std::isfinite(v);
                outside += (v < 0 || v >= 1) ? 1 : 0;
            }
            rows.push_back({fmt::format("{:.1f}", temperatures[k]), fmt::format("{}", x.size(0)),
                            fmt::format("{:.4f}", mean(x).item()),
                            fmt::format("{:.2f}%", 100.0 * static_cast<double>(outside) / x.numel())});
        }
        double data_mean = 0;
        for (std::size_t i = 0; i < n_test * dim; ++i) data_mean += (test.pixels[i] + 0.5) / 256;
        rows.push_back({"test data", fmt::format("{}", n_test), fmt::format("{:.4f}", data_mean / (n_test * dim)), "0%"});
        print_indented(plot::ascii_table({"T", "images", "mean x", "x outside [0, 1)"}, rows));
        fmt::print("\n");
        verifier.check("every sample finite", finite);
    }
    {
        // The forward pass computes log q(x) = log N(z) − Σ log|det J_f| along the way; the inverse
        // pass (log_prob) computes the same density from x alone. They must agree.
        NoGrad no_grad;
        Rng consistency_rng(opt.seed + 99);
        const flows::FlowSample fs = flow.sample_and_log_prob(16, consistency_rng);
        const Tensor back = flow.log_prob(fs.value).value();
        const Tensor forward_lp = fs.log_prob.value();
        const double scale = max(abs(forward_lp)).item();
        fmt::print("\nlog q(x) of 16 samples (T = 1) by the forward pass vs flow.log_prob(x) by the inverse pass:\n\n");
        verifier.check_error("max |log q forward − log p inverse|", max_abs_diff(back, forward_lp), 1e-10 * scale);
    }
    const std::string samples_path = (out_dir / "samples.svg").string(), png_path = (out_dir / "samples.png").string();
    {
        // Two screen pixels per image pixel: a mosaic of 4 × 8 images is 118 × 238 pixels.
        constexpr double svg_zoom = 2;
        const double mosaic_h = sample_rows * (side + 2) - 2, mosaic_w = sample_cols * (side + 2) - 2;
        plot::Figure fig(1, 2, svg_zoom * mosaic_w + 12, svg_zoom * mosaic_h + 30);
        fig.title("Samples from the trained flow");
        for (std::size_t k = 0; k < temperatures.size(); ++k) {
            const Mosaic m = tile(clamp(samples[k], 0.0, 1.0), sample_rows, sample_cols);
            fig.axes(0, static_cast<int>(k)).image(m.pixels, m.height, m.width)
                .set_title(fmt::format("temperature T = {:.1f}", temperatures[k]));
        }
        fig.save(samples_path);
        tutorial::write_npy_beside(samples_path, {{fmt::format("T{:.1f}", temperatures[0]), samples[0]}, {fmt::format("T{:.1f}", temperatures[1]), samples[1]}});
        // The PNG: 8 × 8 samples at each temperature, side by side, 3× enlarged.
        const Mosaic a = tile(clamp(samples[0], 0.0, 1.0), png_side, png_side);
        const Mosaic b = tile(clamp(samples[1], 0.0, 1.0), png_side, png_side);
        constexpr int gap = 8, zoom = 3;
        Mosaic both{{}, a.height * zoom, (2 * a.width + gap) * zoom};
        both.pixels.assign(static_cast<std::size_t>(both.height) * both.width, 1.0);
        for (int r = 0; r < both.height; ++r)
            for (int c = 0; c < both.width; ++c) {
                const int sr = r / zoom, sc = c / zoom;
                double v = 1.0;
                if (sc < a.width) v = a.pixels[static_cast<std::size_t>(sr) * a.width + sc];
                else if (sc >= a.width + gap) v = b.pixels[static_cast<std::size_t>(sr) * b.width + sc - a.width - gap];
                both.pixels[static_cast<std::size_t>(r) * both.width + c] = v;
            }
        write_png(png_path, both);
    }
    fmt::print("\nFigures: {} ({} × {} samples per temperature) and {} (8 × 8 per temperature,\nT = 0.7 left, 1.0 right).\n",
               samples_path, sample_rows, sample_cols, png_path);
    verifier.check("PNG written", std::filesystem::file_size(png_path) > 100,
                   fmt::format("{} bytes", std::filesystem::file_size(png_path)));

    fmt::print(
        "\nReconstructions: a flow is a bijection, so encoding a test image to z = flow.inverse(x) and\n"
        "decoding it, flow.forward(z), gives the image back up to rounding: nothing is lost, unlike an\n"
        "autoencoder. The first test image of each class:\n\n");
    {
        std::vector<std::size_t> picks;
        for (std::size_t c = 0; c < 10; ++c)
            for (std::size_t i = 0; i < n_test; ++i)
                if (test.labels[i] == c) {
                    picks.push_back(i);
                    break;
                }
        NoGrad no_grad;
        const Tensor v = index_select(test.pixels, 0, picks);
        const Tensor x = flows::dequantize(v, eval_rng);
        const Tensor z = flow.inverse(Var(x)).value.value();
        const Tensor x_back = flow.forward(Var(z)).value.value();
        bool same_pixels = true;
        for (std::size_t i = 0; i < x_back.numel(); ++i) same_pixels = same_pixels && std::floor(256 * x_back[i]) == v[i];
        const double z_mean = mean(z).item(), z_std = std::sqrt(mean(square(z - z_mean)).item());
        verifier.check_error("max |x − forward(inverse(x))|", max_abs_diff(x_back, x), 1e-9);
        verifier.check("⌊256·x_back⌋ = the original pixels", same_pixels, fmt::format("{} images", picks.size()));
        fmt::print(
            "\nTheir latents z have mean {:.3f} and standard deviation {:.3f} over all {} values (a perfect\n"
            "model would make them N(0, 1)). The figure shows z through the normal CDF Φ(z), which maps\n"
            "N(0, 1) to uniform gray levels: structure left in z is what the model did not explain.\n",
            z_mean, z_std, z.numel());
        const std::string recon_path = (out_dir / "reconstructions.svg").string();
        Tensor phi = z.clone();
        for (double& g : phi.span()) g = standard_normal_cdf(g);
        const std::size_t n_picks = picks.size();
        const Mosaic originals = tile(v * (1.0 / 255), 1, n_picks), latents = tile(phi, 1, n_picks),
                     decoded = tile(clamp(x_back, 0.0, 1.0), 1, n_picks);
        plot::Figure fig(3, 1, 3 * originals.width + 12, image_panel_height);
        fig.title("The first test image of each class, encoded and decoded");
        fig.axes(0, 0).image(originals.pixels, originals.height, originals.width)
            .set_title(fmt::format("test images x: {}", fmt::join(std::vector<std::string>(classes.begin(), classes.end()), ", ")));
        fig.axes(1, 0).image(latents.pixels, latents.height, latents.width)
            .set_title("their latents z = flow.inverse(x), shown as Φ(z)");
        fig.axes(2, 0).image(decoded.pixels, decoded.height, decoded.width).set_title("flow.forward(z)");
        fig.save(recon_path);
        fmt::print("\nFigure: {} (rows: original, Φ(z), reconstruction).\n", recon_path);
    }

    fmt::print(
        "\nTotal: {:.1f} s wall, {:.1f} s CPU. Settings: --steps {} --batch {} --hidden {} --couplings {} --norm {}\n"
        "--lr {:g} --threads {}; test bits/dim {:.4f} over {} images.\n\n",
        wall_seconds(), cpu_seconds(), s.steps, s.batch, s.hidden, s.couplings, flows::to_string(s.norm), s.lr, threads,
        test_mean, thousands(n_test));
    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli(
        "09_realnvp_fashion_mnist",
        "RealNVP on Fashion-MNIST: dequantization, the logit transform, bits per dimension, checkerboard couplings, "
        "training with checkpoints and --resume, test bits/dim, samples and reconstructions");
    tapeflow::tutorial::images::declare_training_options(
        cli, {.steps = {"15000", "40"},
              .batch = {"64", "32"},
              .warmup = {"100", "10"},
              .checkpoint_every = {"1000", "20"},
              .test_images = {"10000", "500"},
              .steps_help = "training steps (the default takes about 10 minutes on 2 cores)"});
    cli.integer("--hidden", {"256", "48"}, {1, 8192}, "width H of the conditioners 784 → H → H → 1568")
        .integer("--couplings", "6", {1, 64}, "affine coupling layers")
        .choice("--norm", "actnorm", {"none", "actnorm", "batchnorm"}, "layer between couplings");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
