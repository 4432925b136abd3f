// 10_multiscale_realnvp: the RealNVP of the paper on Fashion-MNIST: convolutional couplings, checkerboard and channel masks, squeeze, factor-out over scales, training with --resume, test bits/dim, samples, what each scale encodes, and a comparison with the MLP RealNVP and two Gaussians
//
// Tutorial 09 flattened the image and gave every coupling an MLP. Dinh et al. (2017, Sec. 3.4-3.6,
// 4.1) keep the image an image: the conditioners are ResNets of 3×3 convolutions, the masks are a
// spatial checkerboard and a split of the channels, a squeeze trades resolution for channels, and at
// every scale half of the channels leave the flow (factor-out). Each of those steps is derived and
// checked numerically on a tiny image (docs/theory.md §10); then the model is trained on
// Fashion-MNIST with checkpoints and a bit-exact --resume, scored in bits/dim on the 10,000 test
// images, sampled at two temperatures, probed scale by scale, and put beside tutorial 09's MLP
// RealNVP and two Gaussians fitted to the same data, every number measured by this program.
//
//   ./tapeflow tutorial 10 [--steps N] [--batch N] [--hidden H] [--hidden-last H] [--lr LR] [--warmup N]
//                          [--checkpoint-every N] [--resume] [--test-images N] [--train-images N]
//                          [--mlp-steps N] [--mlp-hidden H] [--gaussian-images N] [--threads N]
//                          [--data DIR] [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "autograd/var.hpp"
#include "flows/distributions.hpp"
#include "flows/fashion_mnist.hpp"
#include "flows/flow.hpp"
#include "flows/image_coupling.hpp"
#include "flows/logit.hpp"
#include "flows/multiscale.hpp"
#include "flows/realnvp.hpp"
#include "flows/squeeze.hpp"
#include "nn/checkpoint.hpp"
#include "nn/optimizer.hpp"
#include "nn/progress.hpp"
#include "nn/schedule.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tensor/shape_ops.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/image_training.hpp"
#include "tutorials/common/perturb.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/training_state.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using namespace tapeflow::tutorial::images;
using tapeflow::tutorial::max_parameter_diff;
using tapeflow::tutorial::training_state;
using tapeflow::tutorial::print_indented;
using tapeflow::tutorial::Verifier;

constexpr std::size_t side = 28;
constexpr std::size_t dim = side * side;
constexpr double alpha = logit_alpha;  // the logit's margin, as in tutorial 09 (docs/theory.md §6)
constexpr std::size_t resume_check_steps = 2;
const double ln2 = std::numbers::ln2;

// The training options (tutorials/common/image_training), the model's and the comparison's.
struct Settings : TrainingSettings {
    std::size_t hidden = 0, hidden_last = 0, mlp_steps = 0, mlp_hidden = 0, gaussian_images = 0;
};

Settings multiscale_settings(const tutorial::Options& opt) {
    const auto count = [&](const char* name) { return static_cast<std::size_t>(opt.integer(name)); };
    Settings s;
    static_cast<TrainingSettings&>(s) = parse_training_options(opt);
    s.hidden = count("--hidden");
    s.hidden_last = count("--hidden-last");
    s.mlp_steps = count("--mlp-steps");
    s.mlp_hidden = count("--mlp-hidden");
    s.gaussian_images = count("--gaussian-images");
    return s;
}

// The paper's Sec. 4.1 shape for 28 × 28 (two squeezes: 28 → 14 → 7), its logit preprocessing as the
// last layer (latent → data) so that log_prob is the density of the dequantized image.
std::unique_ptr<flows::Flow> make_multiscale_flow(const Settings& s, std::uint64_t seed) {
    auto flow = flows::make_multiscale_realnvp(
        {.image = {1, side, side}, .scales = 2, .hidden = {s.hidden, s.hidden_last}, .seed = seed});
    flow->add(std::make_unique<flows::LogitPreprocessing>(alpha));
    return flow;
}

flows::MultiScale& multiscale_of(flows::Flow& flow) { return dynamic_cast<flows::MultiScale&>(flow.layer(0)); }

// "■" where the mask copies (b = 1), "·" where it updates, one image row a line.
std::string mask_picture(const Tensor& mask, std::size_t channel, std::size_t height, std::size_t width) {
    std::string out;
    for (std::size_t i = 0; i < height; ++i) {
        for (std::size_t j = 0; j < width; ++j) out += mask[(channel * height + i) * width + j] == 1 ? "■ " : "· ";
        out += '\n';
    }
    return out;
}

// Side by side, with `gap` spaces between the blocks (each block's lines are equally wide).
std::string beside(const std::vector<std::string>& blocks, std::size_t gap = 6) {
    std::vector<std::vector<std::string>> lines;
    std::size_t rows = 0;
    for (const std::string& b : blocks) {
        lines.emplace_back();
        std::size_t start = 0;
        for (std::size_t end; (end = b.find('\n', start)) != std::string::npos; start = end + 1)
            lines.back().push_back(b.substr(start, end - start));
        rows = std::max(rows, lines.back().size());
    }
    std::string out;
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t k = 0; k < lines.size(); ++k)
            out += (r < lines[k].size() ? lines[k][r] : std::string()) + (k + 1 < lines.size() ? std::string(gap, ' ') : "");
        out += '\n';
    }
    return out;
}

// Gaussian baselines on the logit side y = logit(α + (1 − 2α)x), scored as densities of x (the
// logit's log-det included, like the flows): log p(x) = log N(y; μ, Σ) + Σ_d log|dy_d/dx_d|.
struct LogitSide {
    Tensor y;        // [N, D]
    Tensor log_det;  // [N]
};
LogitSide to_logit_side(const Tensor& x) {
    NoGrad no_grad;
    flows::LogitPreprocessing logit(alpha);
    const flows::Transformed t = logit.inverse(Var(x));
    return {t.value.value(), t.log_abs_det_jacobian.value()};
}

struct GaussianFit {
    Tensor mean;        // μ [D]
    Tensor covariance;  // Σ [D, D] (the diagonal model uses only its diagonal)
};
GaussianFit fit_gaussian(const Tensor& y) {
    const std::size_t n = y.size(0), d = y.size(1);
    Tensor mu = Tensor::zeros(Shape{d});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) mu[j] += y[i * d + j];
    mu = mu * (1.0 / static_cast<double>(n));
    Tensor centred = y.clone();
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) centred[i * d + j] -= mu[j];
    // The maximum-likelihood covariance (1/n) Σ (y − μ)(y − μ)ᵀ.
    return {mu, matmul_tn(centred, centred) * (1.0 / static_cast<double>(n))};
}

// log p(x) [N] under N(μ, diag Σ) on the logit side.
Tensor diagonal_log_px(const GaussianFit& g, const LogitSide& data) {
    const std::size_t n = data.y.size(0), d = data.y.size(1);
    Tensor out(Shape{n});
    for (std::size_t i = 0; i < n; ++i) {
        double acc = 0;
        for (std::size_t j = 0; j < d; ++j) {
            const double var = g.covariance[j * d + j], r = data.y[i * d + j] - g.mean[j];
            acc += -0.5 * (r * r / var + std::log(2 * std::numbers::pi * var));
        }
        out[i] = acc + data.log_det[i];
    }
    return out;
}

// log p(x) [N] under N(μ, Σ): −½ (y − μ)ᵀ Σ⁻¹ (y − μ) − ½ log det(2πΣ), with Σ⁻¹(y − μ) by one LU
// solve for all images; also the quadratic forms alone (their mean over the fitting set is exactly D).
struct FullScores {
    Tensor log_px, quadratic;
};
FullScores full_log_px(const GaussianFit& g, const LogitSide& data) {
    const std::size_t n = data.y.size(0), d = data.y.size(1);
    Tensor centred_t(Shape{d, n});  // (y − μ)ᵀ, one image a column
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) centred_t[j * n + i] = data.y[i * d + j] - g.mean[j];
    const Tensor solved = solve(g.covariance, centred_t);
    const double log_det = slogdet(g.covariance).log_abs_det + static_cast<double>(d) * std::log(2 * std::numbers::pi);
    FullScores out{Tensor(Shape{n}), Tensor(Shape{n})};
    for (std::size_t i = 0; i < n; ++i) {
        double q = 0;
        for (std::size_t j = 0; j < d; ++j) q += centred_t[j * n + i] * solved[j * n + i];
        out.quadratic[i] = q;
        out.log_px[i] = -0.5 * (q + log_det) + data.log_det[i];
    }
    return out;
}

Tensor bits_of(const Tensor& log_px) { return flows::bits_per_dim(log_px, Tensor::zeros(log_px.shape()), dim); }

double mean_of(const Tensor& t) { return mean(t).item(); }

// The options a resumed run must share with the run that saved the checkpoint: the training's and
// the model's (the evaluation sizes and the comparison models may change).
nn::CheckpointConfig multiscale_config(const Settings& s, const tutorial::Options& opt) {
    nn::CheckpointConfig config = training_config(s, opt);
    config["--hidden"] = fmt::format("{}", s.hidden);
    config["--hidden-last"] = fmt::format("{}", s.hidden_last);
    return config;
}

// The training loop's state: the flow, its Adam and the recorded history, with the checkpoint writing
// and reading around them.
struct Run {
    std::unique_ptr<flows::Flow> flow;
    std::unique_ptr<nn::Adam> adam;
    std::vector<double> history;  // bits/dim of every batch since step 1

    Run(std::unique_ptr<flows::Flow> f, double lr)
        : flow(std::move(f)), adam(std::make_unique<nn::Adam>(flow->parameters(), nn::AdamOptions{.lr = lr})) {}

    void save(const std::string& path, std::uint64_t step, const nn::CheckpointConfig& config) {
        Tensor stored(Shape{history.size()}, history);
        nn::save_checkpoint(path, *flow, training_state(*adam, step, &stored, &config));
    }
    std::uint64_t load(const std::string& path, const nn::CheckpointConfig& config) {
        std::uint64_t step = 0;
        Tensor stored;
        nn::load_checkpoint(path, *flow, training_state(*adam, step, &stored, &config));
        adam->set_step_count(step);
        history = stored.to_vector();
        return step;
    }
};

int run(const tutorial::Options& opt) {
    const Settings s = multiscale_settings(opt);
    const int threads = set_num_threads(s.threads);
    const std::filesystem::path out_dir(opt.out_dir);
    std::filesystem::create_directories(out_dir);
    const RunClock clock;
    const auto wall_seconds = [&clock] { return clock.wall(); };
    const auto cpu_seconds = [&clock] { return clock.cpu(); };
    const std::string ckpt_path = (out_dir / "checkpoint.ckpt").string();
    if (s.resume && !std::filesystem::exists(ckpt_path))
        throw std::runtime_error(fmt::format(
            "--resume: no checkpoint at {}; run once without --resume (same --out) to create it", ckpt_path));
    if (s.resume) nn::require_checkpoint_config(ckpt_path, multiscale_config(s, opt));

    Verifier verifier;
    Tape::current().clear();
    Rng root(opt.seed);
    Rng check_rng = root.split();  // sections 1-5: random parameters and inputs
    const std::uint64_t init_seed = root.next_u64();
    const std::uint64_t data_seed = root.next_u64();  // training batches: Rng(data_seed + step)
    const std::uint64_t eval_seed = root.next_u64();  // the one dequantization of the test set all models share
    Rng sample_rng = root.split();
    const std::uint64_t mlp_seed = root.next_u64();

    // ------------------------------------------------------------------------------------------
    verifier.section("A convolution keeps the Jacobian triangular");
    fmt::print(
        "An image coupling (Dinh et al. 2017, Sec. 3.4; docs/theory.md §10), data → latent:\n\n"
        "    z = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x))\n\n"
        "s and t come from a ResNet of 3×3 convolutions that may mix every pixel of its input, but its\n"
        "input is b ⊙ x: the copied pixels only. So ∂z_i/∂x_j = 0 whenever j is an updated pixel other\n"
        "than i, whatever the convolutions do, and the Jacobian is triangular once the copied pixels are\n"
        "listed first: log|det| = Σ (1 − b) ⊙ s. On a 1×4×4 image with a checkerboard mask and a ResNet of\n"
        "8 hidden channels, its parameters perturbed so that s, t ≠ 0 (eval mode: the BatchNorms use their\n"
        "running statistics, so each image is transformed on its own), the tape's Jacobian at a random x:\n\n");
    {
        const flows::ImageShape tiny{1, 4, 4};
        flows::ImageAffineCoupling coupling(tiny, flows::ImageMask::checkerboard, 0, check_rng, {.hidden = 8});
        tutorial::perturb_parameters(coupling, check_rng, 0.3);
        coupling.eval();
        const Tensor x = randn(Shape{1, 16}, check_rng);
        const Tensor J = jacobian([&](const Var& v) { return coupling.inverse(v).value; }, x);
        const Tensor& b = coupling.mask();
        std::string picture;
        std::size_t reached = 0, forbidden = 0;
        for (std::size_t i = 0; i < 16; ++i) {
            for (std::size_t j = 0; j < 16; ++j) {
                const double v = J[i * 16 + j];
                picture += i == j ? "d " : v != 0 ? "x " : ". ";
                if (i != j && v != 0) {
                    if (b[i] == 1 || b[j] == 0) ++forbidden;  // a copied output moved, or an updated input read
                    else ++reached;
                }
            }
            picture += b[i] == 1 ? "  (copied)\n" : "  (updated)\n";
        }
        print_indented(picture);
        const flows::Transformed t = [&] {
            NoGrad no_grad;
            return coupling.inverse(Var(x));
        }();
        const double log_det = t.log_abs_det_jacobian.value()[0];
        verifier.check("no ∂z_i/∂x_j ≠ 0 with x_j updated, j ≠ i, or z_i copied", forbidden == 0,
                       fmt::format("{} nonzero off-diagonal entries, all (updated i, copied j)", reached));
        verifier.check("the convolutions do mix: an updated pixel reads ≥ 4 copied ones", reached >= 4 * 8,
                       fmt::format("{} of the 8·8 = 64 possible", reached));
        verifier.check_close("log|det J|", {"Σ (1 − b) ⊙ s", log_det}, {"slogdet(tape J)", slogdet(J).log_abs_det},
                             1e-10, 1e-12);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The checkerboard and channel masks");
    {
        const flows::ImageShape board{1, 6, 6}, channels{4, 3, 3};
        const Tensor b0 = flows::image_mask(board, flows::ImageMask::checkerboard, 0);
        const Tensor b1 = flows::image_mask(board, flows::ImageMask::checkerboard, 1);
        fmt::print("Checkerboard on a 1×6×6 image (■ copied, b = 1; · updated), parity 0 and parity 1:\n\n");
        print_indented(beside({mask_picture(b0, 0, 6, 6), mask_picture(b1, 0, 6, 6)}));
        const Tensor c0 = flows::image_mask(channels, flows::ImageMask::channel, 0);
        fmt::print("\nChannel mask on a 4×3×3 image (after a squeeze), parity 0, channels 0..3 left to right:\n\n");
        print_indented(beside({mask_picture(c0, 0, 3, 3), mask_picture(c0, 1, 3, 3), mask_picture(c0, 2, 3, 3),
                               mask_picture(c0, 3, 3, 3)}));
        bool complementary = true, neighbours = true;
        for (std::size_t d = 0; d < 36; ++d) complementary = complementary && b0[d] + b1[d] == 1;
        for (std::size_t i = 0; i < 6; ++i)
            for (std::size_t j = 0; j < 6; ++j) {
                if (b0[i * 6 + j] == 1) continue;
                if (i > 0) neighbours = neighbours && b0[(i - 1) * 6 + j] == 1;
                if (i < 5) neighbours = neighbours && b0[(i + 1) * 6 + j] == 1;
                if (j > 0) neighbours = neighbours && b0[i * 6 + j - 1] == 1;
                if (j < 5) neighbours = neighbours && b0[i * 6 + j + 1] == 1;
            }
        const Tensor c1 = flows::image_mask(channels, flows::ImageMask::channel, 1);
        double first_half = 0;
        for (std::size_t d = 0; d < 18; ++d) first_half += c0[d];
        verifier.check("checkerboard parities complementary", complementary);
        verifier.check("every updated pixel's 4 neighbours are copied", neighbours);
        verifier.check_close("channel mask parity 0, channels 0–1", {"Σ b", first_half}, {"all 18 copied", 18}, 0, 0);
        verifier.check_close("channel parities complementary", {"Σ (b₀ + b₁)", sum(c0 + c1).item()}, {"36 entries", 36}, 0,
                             0);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Squeeze and why its log-det is 0");
    {
        Tensor numbered(Shape{1, 16});
        for (std::size_t k = 0; k < 16; ++k) numbered[k] = static_cast<double>(k);
        flows::Squeeze squeeze({1, 4, 4});
        const flows::Transformed t = squeeze.inverse(Var(numbered));
        const Tensor& sq = t.value.value();
        std::string before;
        for (std::size_t i = 0; i < 4; ++i) {
            for (std::size_t j = 0; j < 4; ++j) before += fmt::format("{:>3}", numbered[i * 4 + j]);
            before += '\n';
        }
        std::vector<std::string> after(4);
        for (std::size_t c = 0; c < 4; ++c)
            for (std::size_t i = 0; i < 2; ++i) {
                for (std::size_t j = 0; j < 2; ++j) after[c] += fmt::format("{:>3}", sq[(c * 2 + i) * 2 + j]);
                after[c] += '\n';
            }
        fmt::print(
            "Squeeze (Sec. 3.6) turns each 2×2 block of a channel into 4 channels of one pixel: [1, 4, 4] →\n"
            "[4, 2, 2]. The pixels numbered 0..15, then the 4 channels of the squeezed image:\n\n");
        std::vector<std::string> blocks{before};
        blocks.insert(blocks.end(), after.begin(), after.end());
        print_indented(beside(blocks, 4));
        fmt::print(
            "\nIt only moves coordinates, so its Jacobian is a permutation matrix: one 1 in every row and\n"
            "every column, det = ±1, log|det| = 0, with nothing to compute. The tape's Jacobian:\n\n");
        const Tensor J = jacobian([&](const Var& v) { return squeeze.inverse(v).value; }, numbered);
        bool permutation = true;
        for (std::size_t i = 0; i < 16; ++i) {
            double row_sum = 0, col_sum = 0;
            for (std::size_t j = 0; j < 16; ++j) {
                row_sum += J[i * 16 + j];
                col_sum += J[j * 16 + i];
                permutation = permutation && (J[i * 16 + j] == 0 || J[i * 16 + j] == 1);
            }
            permutation = permutation && row_sum == 1 && col_sum == 1;
        }
        verifier.check("J is a permutation matrix (0/1, one 1 per row and column)", permutation);
        verifier.check_close("log|det J|", {"returned", t.log_abs_det_jacobian.value()[0]},
                             {"slogdet(tape J)", slogdet(J).log_abs_det}, 0, 1e-14);
        const Tensor back = squeeze.forward(t.value).value.value();
        verifier.check_error("max |unsqueeze(squeeze(x)) − x|", max_abs_diff(back, numbered), 0);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Factor-out: log p(x) is a sum over scales");
    {
        fmt::print(
            "At the end of each scale half of the channels leave the flow: (z₁, h₁) = f₁(x), then\n"
            "(z₂, h₂) = f₂(h₁), …, the last scale keeps all: z_L = f_L(h_{{L−1}}) (Sec. 3.6, eqs. 13-16).\n"
            "Later scales never touch z_k, so the Jacobian of x ↦ (z₁, …, z_L) is block triangular and\n"
            "its log-det is the sum of the scales' log-dets; a standard normal base on z factorizes over\n"
            "the blocks. Together:\n\n"
            "    log p(x) = Σ_k log N(z_k; 0, I) + Σ_k log|det ∂(z_k, h_k)/∂h_{{k−1}}|\n\n"
            "A tiny multi-scale flow on 1×4×4 (2 checkerboard couplings, squeeze to 4×2×2, 2 channel\n"
            "couplings, factor out 2 channels, then 2 checkerboard couplings on 2×2×2; ResNets of 4\n"
            "channels; parameters perturbed), against the unfactored computation: the whole 16×16\n"
            "Jacobian of x ↦ z by the tape and log N(z; 0, I₁₆) + log|det J| by slogdet:\n\n");
        auto tiny = flows::make_multiscale_realnvp({.image = {1, 4, 4}, .scales = 1, .checkerboard = 2, .channel = 2,
                                                    .final_couplings = 2, .hidden = {4},
                                                    .seed = check_rng.next_u64()});
        tutorial::perturb_parameters(*tiny, check_rng, 0.3);
        tiny->eval();
        flows::MultiScale& ms = multiscale_of(*tiny);
        const Tensor x = randn(Shape{1, 16}, check_rng);
        const auto latents_of = [&ms](const Tensor& at) {
            NoGrad no_grad;
            return ms.latents(Var(at));
        };
        const flows::MultiScale::Latents l = latents_of(x);
        double sum_over_scales = l.log_abs_det_jacobian.value()[0];
        std::vector<Tensor> blocks;
        for (std::size_t k = 0; k < l.blocks.size(); ++k) {
            const Tensor zk = l.blocks[k].value();
            const double term = flows::StandardNormal(zk.size(1)).log_prob(Var(zk)).value()[0];
            fmt::print("    log N(z_{}; 0, I_{:<2}) = {:>10.6f}\n", k + 1, zk.size(1), term);
            sum_over_scales += term;
            blocks.push_back(zk);
        }
        fmt::print("    Σ log|det| of all steps = {:>10.6f}\n\n", l.log_abs_det_jacobian.value()[0]);
        const Tensor z = concat(blocks, 1);
        const Tensor J = jacobian([&](const Var& v) { return ms.inverse(v).value; }, x);
        const double unfactored = flows::StandardNormal(16).log_prob(Var(z)).value()[0] + slogdet(J).log_abs_det;
        verifier.check_close("log p(x)", {"Σ over scales", sum_over_scales}, {"log N(z) + slogdet(J)", unfactored},
                             1e-10, 1e-10);
        verifier.check_close("log p(x)", {"flow.log_prob", [&] { NoGrad ng; return tiny->log_prob(Var(x)).value()[0]; }()},
                             {"log N(z) + slogdet(J)", unfactored}, 1e-10, 1e-10);
        // Block triangular: z₁ (the factored-out half) does not depend on what the last scale does.
        for (Parameter* p : ms.step(1, 0).parameters()) p->value = p->value * 2.0;
        const flows::MultiScale::Latents changed = latents_of(x);
        verifier.check_error("max |Δ z₁| after changing the last scale's coupling",
                             max_abs_diff(changed.blocks[0].value(), blocks[0]), 0);
        verifier.check("… while z₂ did change", max_abs_diff(changed.blocks[1].value(), blocks[1]) > 0);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The receptive field grows with scale");
    {
        fmt::print(
            "Each conditioner is Conv 3×3 → residual block (two 3×3) → Conv 3×3: four 3×3 convolutions, so\n"
            "one output pixel reads a 9×9 window of the coupling's input. After s squeezes one pixel of the\n"
            "coupling's grid is a 2^s × 2^s block of the image, so the same network reads 9·2^s image\n"
            "pixels across. Measured: the support of ∂t_c(center)/∂x (summed over 4 random images so no\n"
            "ReLU hides an input) for one conditioner applied after 0, 1 and 2 squeezes of a 28×28 image:\n\n");
        std::vector<std::vector<std::string>> rows;
        for (std::size_t s = 0; s <= 2; ++s) {
            const std::size_t c = std::size_t{1} << (2 * s), h = side >> s;
            Rng net_rng(check_rng.next_u64());
            auto net = nn::make_resnet(c, 2 * c, net_rng, {.hidden = 8});
            tutorial::perturb_parameters(*net, net_rng, 0.3);
            net->eval();
            std::vector<double> support(dim, 0.0);
            for (int rep = 0; rep < 4; ++rep) {
                const Tensor x = randn(Shape{1, dim}, check_rng);
                const Tensor J = jacobian(
                    [&](const Var& v) {
                        Var img = reshape(v, Shape{1, 1, side, side});
                        for (std::size_t k = 0; k < s; ++k) img = flows::squeeze2x2(img);
                        const Var out = reshape((*net)(img), Shape{1, 2 * c * h * h});
                        return narrow(out, 1, (c * h + h / 2) * h + h / 2, 1);  // t's channel 0 at the center
                    },
                    x);
                for (std::size_t d = 0; d < dim; ++d) support[d] += std::abs(J[d]);
            }
            std::size_t top = side, bottom = 0, left = side, right = 0;
            for (std::size_t i = 0; i < side; ++i)
                for (std::size_t j = 0; j < side; ++j)
                    if (support[i * side + j] > 0) {
                        top = std::min(top, i), bottom = std::max(bottom, i);
                        left = std::min(left, j), right = std::max(right, j);
                    }
            const std::size_t height = bottom + 1 - top, width = right + 1 - left;
            const std::size_t predicted = std::min<std::size_t>(9 << s, side);
            rows.push_back({fmt::format("{}", s), fmt::format("{}×{}×{}", c, h, h), fmt::format("{}", 9 << s),
                            fmt::format("{}×{}", height, width)});
            verifier.check_close(fmt::format("window width after {} squeezes", s), {"measured", static_cast<double>(width)},
                                 {"min(9·2^s, 28)", static_cast<double>(predicted)}, 0, 0);
        }
        print_indented(plot::ascii_table({"squeezes", "grid", "9·2^s", "measured window"}, rows));
        fmt::print(
            "\nSo the couplings at the first scale model local texture, and after two squeezes a single\n"
            "conditioner sees the whole garment: the multi-scale model is coarse-to-fine by construction.\n");
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Training, checkpoints and --resume");
    const flows::FashionMnist train = flows::load_fashion_mnist("train", s.data_dir, s.train_images);
    const flows::FashionMnist test = flows::load_fashion_mnist("test", s.data_dir, s.test_images);
    const std::size_t n_train = train.pixels.size(0), n_test = test.pixels.size(0);
    Run main_run(make_multiscale_flow(s, init_seed), s.lr);
    flows::Flow& flow = *main_run.flow;
    fmt::print(
        "make_multiscale_realnvp({{.image = {{1, 28, 28}}, .scales = 2, .hidden = {{{}, {}}}}}) — per scale 3\n"
        "checkerboard couplings, squeeze, 3 channel couplings, factor out half; then 4 checkerboard\n"
        "couplings on 4×7×7 — and LogitPreprocessing(α = {}) as the last layer, as in tutorial 09.\n"
        "Latent blocks [{}], {} parameters.\n\n",
        s.hidden, s.hidden_last, alpha, fmt::join(multiscale_of(flow).latent_sizes(), ", "), flow.parameter_count());
    const nn::LinearWarmup schedule(nn::CosineAnnealing(s.lr, s.steps, 0.0), s.warmup, 1.0 / static_cast<double>(s.warmup));
    const nn::CheckpointConfig config = multiscale_config(s, opt);
    std::uint64_t start_step = 0;
    if (s.resume) {
        start_step = main_run.load(ckpt_path, config);
        fmt::print("Resumed from {} at step {}.\n\n", ckpt_path, start_step);
    }
    fmt::print(
        "{} steps of Adam (lr {:g}, {} warm-up steps, cosine to 0), batches of {} from {} training images\n"
        "(batch and dequantization noise seeded by the step alone), a checkpoint every {} steps at {}.\n"
        "{} thread{}.\n\n",
        s.steps, s.lr, s.warmup, s.batch, n_train, s.checkpoint_every, ckpt_path, threads, threads == 1 ? "" : "s");

    // The resume check, run by every invocation that saves a checkpoint early enough: a twin built from
    // another seed loads the first checkpoint and takes the next steps; they must match bit for bit.
    std::vector<double> twin_losses;
    std::uint64_t twin_from = 0;
    double twin_parameter_diff = std::numeric_limits<double>::quiet_NaN();
    std::unique_ptr<Run> twin;
    std::optional<std::uint64_t> last_saved;
    if (s.resume) last_saved = start_step;
    const double train_cpu_start = cpu_seconds(), train_wall_start = wall_seconds();
    std::uint64_t last_step = start_step;
    if (start_step < s.steps) {
        nn::Progress progress(s.steps, {.label = "bits/dim", .initial_step = start_step});
        for (std::uint64_t step = start_step + 1; step <= s.steps; ++step) {
            const double bits = train_step(flow, *main_run.adam, schedule, train.pixels, s.batch, data_seed, step);
            if (!std::isfinite(bits) || !all_finite(flow, *main_run.adam))
                throw std::runtime_error(diverged_message(step, bits, ckpt_path, last_saved));
            main_run.history.push_back(bits);
            last_step = step;
            if (step % s.checkpoint_every == 0 || step == s.steps) {
                main_run.save(ckpt_path, step, config);
                last_saved = step;
                if (twin_losses.empty() && !twin && step + resume_check_steps <= s.steps) {
                    twin = std::make_unique<Run>(make_multiscale_flow(s, init_seed + 1), s.lr);
                    twin_from = twin->load(ckpt_path, config);
                    for (std::uint64_t t = twin_from + 1; t <= twin_from + resume_check_steps; ++t)
                        twin_losses.push_back(
                            train_step(*twin->flow, *twin->adam, schedule, train.pixels, s.batch, data_seed, t));
                }
            }
            if (twin && step == twin_from + resume_check_steps) {
                twin_parameter_diff = max_parameter_diff(flow, *twin->flow);
                twin.reset();
            }
            if (!progress.update(step, bits)) break;
        }
        progress.finish();
    }
    const double train_wall = wall_seconds() - train_wall_start, train_cpu = cpu_seconds() - train_cpu_start;
    const std::uint64_t steps_run = last_step - start_step;
    if (steps_run > 0)
        fmt::print("\n{} steps in {:.1f} s wall, {:.1f} s CPU: {:.3f} s wall and {:.3f} s CPU per step.\n", steps_run,
                   train_wall, train_cpu, train_wall / static_cast<double>(steps_run),
                   train_cpu / static_cast<double>(steps_run));
    const std::vector<double>& history = main_run.history;
    print_training_curve(history, 10);
    verifier.check("every training loss finite", history.size() == last_step &&
                   std::all_of(history.begin(), history.end(), [](double b) { return std::isfinite(b); }),
                   fmt::format("{} steps recorded", history.size()));
    if (!twin_losses.empty()) {
        fmt::print("\nA twin (other initial seed) loaded the checkpoint of step {} and trained on:\n", twin_from);
        check_resumed_run(verifier, history, twin_from, twin_losses, twin_parameter_diff);
    } else if (steps_run > 0) {
        fmt::print("(No resume check in this run: it needs a checkpoint at least {} steps before --steps.)\n",
                   resume_check_steps);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Test bits per dimension");
    flow.eval();
    Rng eval_rng(eval_seed);
    const double eval_start = wall_seconds();
    const Tensor test_bits = evaluate_bits(flow, test.pixels, eval_rng);
    const double test_mean = mean_of(test_bits);
    const double test_se = std::sqrt(mean(square(test_bits - test_mean)).item() / static_cast<double>(n_test));
    fmt::print(
        "flow.eval() (BatchNorm on its running statistics), NoGrad, one dequantization per image (the same\n"
        "draw for every model below). {} test images in {:.1f} s:\n\n"
        "    test  {:.4f} ± {:.4f} bits/dim  (± one standard error)\n\n",
        n_test, wall_seconds() - eval_start, test_mean, test_se);
    {
        NoGrad no_grad;
        bool finite = true;
        for (const double b : test_bits.span()) finite = finite && std::isfinite(b);
        verifier.check("every test bits/dim finite", finite);
        // A few quick steps leave the BatchNorms' running statistics far from the batch statistics the
        // flow was trained with, so this bound is for real runs only.
        if (!opt.quick)
            verifier.check_at_most("test bits/dim (sanity bound)", {"flow", test_mean}, {"uniform model", 8.0});
        // By hand for one image: −log p(x)/(D ln 2) + log₂ 256 (docs/theory.md §6).
        Rng again(eval_seed);
        const Tensor x = flows::dequantize(narrow(test.pixels, 0, 0, 2), again);
        const double log_px = flow.log_prob(Var(x)).value()[0];
        verifier.check_close("image 0: bits/dim", {"evaluate_bits", test_bits[0]},
                             {"−log p/(D ln 2) + 8", -log_px / (static_cast<double>(dim) * ln2) + 8}, 1e-12, 1e-12);
        const Tensor alone = flow.log_prob(Var(narrow(x, 0, 1, 1))).value();
        verifier.check_close("image 1: log p", {"alone", alone[0]}, {"in a batch of 2", flow.log_prob(Var(x)).value()[1]},
                             1e-12, 1e-10);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Samples at T = 0.7 and 1.0");
    const std::vector<double> temperatures{0.7, 1.0};
    constexpr std::size_t sample_rows = 6, sample_cols = 10;
    const std::string samples_path = (out_dir / "samples.svg").string();
    {
        fmt::print(
            "sample_at_temperature draws z ~ N(0, T² I) in every latent block (every scale) and runs the\n"
            "flow forward. T < 1 keeps to the typical set's core (Kingma & Dhariwal 2018, Sec. 5).\n\n");
        plot::Figure fig(1, 2, 2.0 * (sample_cols * (side + 2) - 2) + 12, 2.0 * (sample_rows * (side + 2) - 2) + 30);
        fig.title("Multi-scale RealNVP: samples");
        for (std::size_t k = 0; k < temperatures.size(); ++k) {
            const Tensor x = flows::sample_at_temperature(flow, sample_rows * sample_cols, temperatures[k], sample_rng);
            bool finite = true;
            for (const double v : x.span()) finite = finite && std::isfinite(v);
            verifier.check(fmt::format("samples at T = {:.1f} finite", temperatures[k]), finite);
            const Mosaic m = tile(clamp(x, 0.0, 1.0), sample_rows, sample_cols);
            fig.axes(0, static_cast<int>(k)).image(m.pixels, m.height, m.width)
                .set_title(fmt::format("temperature T = {:.1f}", temperatures[k]));
            write_png((out_dir / fmt::format("samples_T{:.1f}.png", temperatures[k])).string(), m);
        }
        fig.save(samples_path);
        fmt::print("Figure: {} (and one PNG per temperature beside it).\n", samples_path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("What each scale's latents encode");
    {
        fmt::print(
            "Encode test images, z = (z₁, z₂, z₃) by scale, redraw one block at T = 0.7 and keep the\n"
            "others, then decode. z₁ (392 values, factored out at 28×28) and z₂ (196, at 14×14) left the\n"
            "flow early; z₃ (196, 4×7×7) went through every coupling.\n\n");
        NoGrad no_grad;
        flows::MultiScale& ms = multiscale_of(flow);
        flows::Bijector& logit = flow.layer(1);
        Rng pick_rng(eval_seed + 1);
        const std::size_t n_show = 8;
        const Tensor x = flows::dequantize(narrow(test.pixels, 0, 0, n_show), pick_rng);
        const Tensor y = logit.inverse(Var(x)).value.value();
        const flows::MultiScale::Latents l = ms.latents(Var(y));
        std::vector<Tensor> rows_of_images{x};
        std::vector<std::string> labels{"test images"};
        for (std::size_t k = 0; k < l.blocks.size(); ++k) {
            std::vector<Var> blocks = l.blocks;
            blocks[k] = Var(randn(blocks[k].shape(), sample_rng, 0, 0.7));
            const Tensor z = concat(blocks, 1).value();
            const Tensor decoded = logit.forward(ms.forward(Var(z)).value).value.value();
            double changed = 0;
            for (std::size_t i = 0; i < decoded.numel(); ++i) changed += std::abs(decoded[i] - x[i]);
            changed /= static_cast<double>(decoded.numel());
            fmt::print("    z_{} redrawn ({} values): mean |Δ pixel| = {:.4f}\n", k + 1, l.blocks[k].shape()[1], changed);
            rows_of_images.push_back(decoded);
            labels.push_back(fmt::format("z{} redrawn ({} values)", k + 1, l.blocks[k].shape()[1]));
        }
        const Tensor back = logit.forward(ms.forward(Var(concat(l.blocks, 1).value())).value).value.value();
        verifier.check_error("nothing redrawn: max |decode(encode(x)) − x|", max_abs_diff(back, x), 1e-8);
        const std::string path = (out_dir / "scales.svg").string();
        plot::Figure fig(static_cast<int>(rows_of_images.size()), 1, 2.0 * (n_show * (side + 2) - 2) + 12,
                         2.0 * side + 30);
        fig.title("Redrawing one scale's latents, keeping the others");
        for (std::size_t r = 0; r < rows_of_images.size(); ++r) {
            const Mosaic m = tile(clamp(rows_of_images[r], 0.0, 1.0), 1, n_show);
            fig.axes(static_cast<int>(r), 0).image(m.pixels, m.height, m.width).set_title(labels[r]);
        }
        fig.save(path);
        fmt::print("\nFigure: {}.\n", path);
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("Beside the MLP RealNVP and the Gaussians");
    std::vector<std::vector<std::string>> table;
    {
        fmt::print(
            "Every model scored on the same {} dequantized test images (one draw, eval_seed), as densities of\n"
            "x: the Gaussians on the logit side with the logit's log-det, fitted by maximum likelihood to\n"
            "{} dequantized training images.\n\n",
            n_test, std::min(s.gaussian_images, n_train));
        Rng fit_rng(data_seed - 1);
        const LogitSide fit = to_logit_side(
            flows::dequantize(narrow(train.pixels, 0, 0, std::min(s.gaussian_images, n_train)), fit_rng));
        Rng test_rng(eval_seed);
        const LogitSide scored = to_logit_side(flows::dequantize(test.pixels, test_rng));
        const GaussianFit g = fit_gaussian(fit.y);
        const Tensor diag_bits = bits_of(diagonal_log_px(g, scored));
        {
            // The diagonal Gaussian by hand against DiagNormal's log_prob at the same μ, σ.
            flows::DiagNormal reference(dim);
            Tensor log_std(Shape{dim});
            for (std::size_t j = 0; j < dim; ++j) log_std[j] = 0.5 * std::log(g.covariance[j * dim + j]);
            reference.mean().value = g.mean;
            reference.log_std().value = log_std;
            NoGrad no_grad;
            const double by_class = reference.log_prob(Var(narrow(scored.y, 0, 0, 1))).value()[0] + scored.log_det[0];
            verifier.check_close("diagonal Gaussian, image 0: bits/dim", {"by hand", diag_bits[0]},
                                 {"DiagNormal", bits_of(Tensor(Shape{1}, {by_class}))[0]}, 1e-12, 1e-12);
        }
        const FullScores full = full_log_px(g, scored);
        const Tensor full_bits = bits_of(full.log_px);
        verifier.check_close("full covariance, on its fitting set", {"mean (y − μ)ᵀΣ⁻¹(y − μ)", mean_of(full_log_px(g, fit).quadratic)},
                             {"D (Σ = sample cov.)", static_cast<double>(dim)}, 1e-6, 0);
        fmt::print("\nTutorial 09's model: make_realnvp (6 checkerboard MLP couplings 784 → {0} → {0} → 1568, ActNorm\n"
                   "between them, its ActNorm initialized on 1,000 images) + the same logit, trained here for {1}\n"
                   "steps of the same schedule, batch {2}:\n\n",
                   s.mlp_hidden, s.mlp_steps, s.batch);
        auto mlp = make_mlp_realnvp(6, s.mlp_hidden, flows::Normalization::actnorm, mlp_seed);
        {
            NoGrad no_grad;
            mlp->log_prob(Var(training_batch(train.pixels, std::min<std::size_t>(1000, n_train), data_seed, 0)));
        }
        nn::Adam mlp_adam(mlp->parameters(), {.lr = s.lr});
        const nn::LinearWarmup mlp_schedule(nn::CosineAnnealing(s.lr, s.mlp_steps, 0.0), s.warmup,
                                            1.0 / static_cast<double>(s.warmup));
        const double mlp_cpu = cpu_seconds();
        {
            nn::Progress progress(s.mlp_steps, {.label = "MLP RealNVP bits/dim"});
            for (std::uint64_t step = 1; step <= s.mlp_steps; ++step)
                if (!progress.update(step, train_step(*mlp, mlp_adam, mlp_schedule, train.pixels, s.batch, data_seed, step)))
                    break;
            progress.finish();
        }
        const double mlp_step_cpu = (cpu_seconds() - mlp_cpu) / static_cast<double>(std::max<std::size_t>(1, s.mlp_steps));
        mlp->eval();
        Rng mlp_eval_rng(eval_seed);
        const Tensor mlp_bits = evaluate_bits(*mlp, test.pixels, mlp_eval_rng);
        const double per_step = steps_run ? train_cpu / static_cast<double>(steps_run) : std::nan("");
        table = {
            {"diagonal Gaussian (logit side)", fmt::format("{}", 2 * dim), "closed form", "-", fmt::format("{:.4f}", mean_of(diag_bits))},
            {"full-covariance Gaussian (logit side)", fmt::format("{}", dim + dim * (dim + 1) / 2), "closed form", "-",
             fmt::format("{:.4f}", mean_of(full_bits))},
            {"tutorial 09: MLP RealNVP", fmt::format("{}", mlp->parameter_count()), fmt::format("{}", s.mlp_steps),
             fmt::format("{:.3f}", mlp_step_cpu), fmt::format("{:.4f}", mean_of(mlp_bits))},
            {"this tutorial: multi-scale RealNVP", fmt::format("{}", flow.parameter_count()), fmt::format("{}", last_step),
             fmt::format("{:.3f}", per_step), fmt::format("{:.4f}", test_mean)},
        };
        fmt::print("\n");
        print_indented(plot::ascii_table({"model", "parameters", "steps", "CPU s/step", "test bits/dim"}, table));
        // Not in the quick run: 3,000 images are too few for 307,720 covariance entries not to overfit.
        if (!opt.quick)
            verifier.check("full covariance beats the diagonal", mean_of(full_bits) < mean_of(diag_bits),
                           fmt::format("{:.4f} < {:.4f}", mean_of(full_bits), mean_of(diag_bits)));
        if (!opt.quick && last_step >= 500)
            verifier.check("the multi-scale flow beats the full-covariance Gaussian", test_mean < mean_of(full_bits),
                           fmt::format("{:.4f} < {:.4f}", test_mean, mean_of(full_bits)));
    }

    fmt::print(
        "\nTotal: {:.1f} s wall, {:.1f} s CPU. Settings: --steps {} --batch {} --hidden {} --hidden-last {} --lr {:g}\n"
        "--threads {}; test bits/dim {:.4f} over {} images.\n\n",
        wall_seconds(), cpu_seconds(), s.steps, s.batch, s.hidden, s.hidden_last, s.lr, threads, test_mean, n_test);
    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli(
        "10_multiscale_realnvp",
        "The multi-scale convolutional RealNVP of Dinh et al. 2017 on Fashion-MNIST: masks, squeeze, factor-out, "
        "training with --resume, test bits/dim, samples, the scales' latents, a comparison table");
    tapeflow::tutorial::images::declare_training_options(
        cli, {.steps = {"3000", "6"},
              .batch = {"64", "8"},
              .warmup = {"100", "2"},
              .checkpoint_every = {"100", "3"},
              .test_images = {"10000", "100"},
              .steps_help = "training steps of the multi-scale flow (3000: about 30 min of training on 2 idle cores)"});
    cli.integer("--hidden", {"16", "4"}, {1, 1024}, "channels of the first scale's ResNet conditioners")
        .integer("--hidden-last", {"32", "4"}, {1, 1024}, "channels of the later scales' conditioners")
        .integer("--mlp-steps", {"1000", "3"}, {1, 10'000'000}, "training steps of tutorial 09's MLP RealNVP")
        .integer("--mlp-hidden", {"256", "16"}, {1, 8192}, "width of the MLP RealNVP's conditioners")
        .integer("--gaussian-images", {"20000", "3000"}, {1000, 60'000}, "training images the Gaussians are fitted to");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
