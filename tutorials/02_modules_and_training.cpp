// 02_modules_and_training: fit an MLP to noisy sin from scratch: the model, MSE, Adam by hand, the training loop, a checkpoint
//
// A first end-to-end training run. We draw noisy samples of sin on [−π, π], build the MLP
// 1 → 32 → 32 → 1 (tanh), and take one training step by hand: the mean squared error, its gradient
// by the chain rule through every layer (checked against the tape and against finite differences),
// and Adam's update with bias correction for one weight (checked against the optimizer). Then the
// training loop (zero_grad, backward, step, tape.clear()) with a progress display, the fit and the
// loss curve as figures, and a checkpoint that reloads into a fresh model with bit-identical
// predictions and resumes training bit for bit.
//
//   ./tapeflow tutorial 02 [--steps N] [--lr LR] [--quick] [--out DIR] [--seed N]

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/reduce.hpp"
#include "autograd/var.hpp"
#include "nn/nn.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/linalg.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"
#include "tutorials/common/cli.hpp"
#include "tutorials/common/console.hpp"
#include "tutorials/common/svg_plot.hpp"
#include "tutorials/common/text_view.hpp"
#include "tutorials/common/training_state.hpp"
#include "tutorials/common/verify.hpp"

namespace {

using namespace tapeflow;
using tapeflow::tutorial::Verifier;

constexpr double pi = std::numbers::pi;
constexpr std::size_t n_data = 1024;
constexpr double noise_std = 0.2;  // σ of the noise: the best achievable mean squared error is σ² = 0.04
const std::vector<std::size_t> layer_sizes = {1, 32, 32, 1};

// y = sin x + σ·ε on x ~ U(−π, π), ε ~ N(0, 1); both [n, 1] (one row per sample, one feature).
struct Data {
    Tensor x, y;
};

Data make_data(std::size_t n, Rng& rng) {
    Data d{Tensor(Shape{n, 1}), Tensor(Shape{n, 1})};
    for (std::size_t i = 0; i < n; ++i) {
        d.x[i] = rng.uniform(-pi, pi);
        d.y[i] = std::sin(d.x[i]) + noise_std * rng.normal();
    }
    return d;
}

// The same initialization seed gives the same weights, bit for bit (nn/init.hpp).
std::unique_ptr<nn::MLP> make_model(std::uint64_t seed) {
    Rng rng(seed);
    return std::make_unique<nn::MLP>(layer_sizes, rng, nn::MLPOptions{.activation = nn::Activation::tanh});
}

// The mean squared error L = (1/N) Σᵢ (ŷᵢ − yᵢ)².
Var mse(const Var& prediction, const Var& target) { return mean(square(prediction - target)); }

// The model's forward pass without the tape, as the formula: h₀ = x, h_{k+1} = tanh(h_k·W_k + b_k)
// for the hidden layers, ŷ = h_{L−1}·W_{L−1} + b_{L−1}. Returns h₀ … h_{L−1} and ŷ last.
std::vector<Tensor> forward_by_hand(const nn::MLP& model, const Tensor& x) {
    std::vector<Tensor> h = {x};
    for (std::size_t k = 0; k < model.depth(); ++k) {
        const nn::Linear& layer = model.linear(k);
        const Tensor z = matmul(h.back(), layer.weight().value) + layer.bias()->value;
        h.push_back(k + 1 < model.depth() ? tanh(z) : z);
    }
    return h;
}

// The gradient of the MSE by the chain rule, layer by layer from the output back (section 3):
// δ = ∂L/∂ŷ = 2(ŷ − y)/N, then for each layer k from the last: ∂L/∂W_k = h_kᵀ·δ, ∂L/∂b_k = Σ_rows δ,
// and δ ← (δ·W_kᵀ) ⊙ (1 − h_k²) to step back through the tanh that produced h_k.
// Returned as {"0.weight", ∂L/∂W₀}, {"0.bias", ∂L/∂b₀}, … in the model's parameter order.
std::vector<std::pair<std::string, Tensor>> backward_by_hand(const nn::MLP& model, const std::vector<Tensor>& h,
                                                             const Tensor& y) {
    const std::size_t depth = model.depth();
    const double n = static_cast<double>(y.numel());
    Tensor delta = (h.back() - y) * (2.0 / n);
    std::vector<std::pair<std::string, Tensor>> grads(2 * depth);
    for (std::size_t k = depth; k-- > 0;) {
        const Tensor& w = model.linear(k).weight().value;
        grads[2 * k] = {fmt::format("{}.weight", 2 * k), matmul_tn(h[k], delta)};
        grads[2 * k + 1] = {fmt::format("{}.bias", 2 * k), sum(delta, 0)};
        if (k > 0) delta = mul(matmul_nt(delta, w), 1.0 - square(h[k]));
    }
    return grads;
}

// Every prediction of the model for the inputs x, without recording (evaluation).
Tensor predict(nn::MLP& model, const Tensor& x) {
    NoGrad no_grad;
    return model(Var(x)).value();
}

// One training step, exactly as the loop of section 4 does it. Returns the loss as a plain double.
double train_step(nn::MLP& model, nn::Optimizer& optimizer, const Data& data) {
    Tape& tape = Tape::current();
    optimizer.zero_grad();
    const Var loss = mse(model(Var(data.x)), Var(data.y));
    tape.backward(loss);
    optimizer.step();
    const double value = loss.item();
    tape.clear();
    return value;
}

using tutorial::max_parameter_diff;
using tutorial::training_state;

double rms(const Tensor& a, const Tensor& b) { return std::sqrt(mean(square(a - b)).item()); }

using tutorial::print_indented;

int run(const tutorial::Options& opt) {
    const auto steps = static_cast<std::uint64_t>(opt.integer("--steps"));
    const double lr = opt.real("--lr");
    const std::filesystem::path out_dir(opt.out_dir);
    std::filesystem::create_directories(out_dir);

    Verifier verifier;
    Tape& tape = Tape::current();
    tape.clear();
    // One seed drives everything, through independent streams: the data, then the initialization.
    Rng root(opt.seed);
    Rng data_rng = root.split();
    const std::uint64_t init_seed = root.next_u64();

    // ------------------------------------------------------------------------------------------
    verifier.section("The data");
    const Data data = make_data(n_data, data_rng);
    const Tensor noise = data.y - sin(data.x);
    const double noise_floor = mean(square(noise)).item();  // the loss of sin itself on this sample
    const double noise_mean = mean(noise).item();
    fmt::print(
        "{} samples (xᵢ, yᵢ) with xᵢ ~ U(−π, π) and yᵢ = sin xᵢ + σ·εᵢ, εᵢ ~ N(0, 1), σ = {} (seed {}).\n"
        "Stored as two [{}, 1] tensors: one row per sample, one feature per row. The first five:\n\n",
        n_data, noise_std, opt.seed, n_data);
    {
        std::vector<std::vector<std::string>> rows;
        for (std::size_t i = 0; i < 5; ++i)
            rows.push_back({fmt::format("{}", i), fmt::format("{:.6f}", data.x[i]), fmt::format("{:.6f}", data.y[i]),
                            fmt::format("{:.6f}", std::sin(data.x[i]))});
        print_indented(plot::ascii_table({"i", "x", "y", "sin x"}, rows));
    }
    fmt::print(
        "\nNo model can predict the noise, so the best mean squared error to expect is σ² = {:.4g}.\n"
        "On this sample, sin itself scores (1/N) Σ (yᵢ − sin xᵢ)² = {:.6f}: the noise floor.\n\n",
        noise_std * noise_std, noise_floor);
    {
        Rng again = Rng(opt.seed).split();
        const Data twin = make_data(n_data, again);
        verifier.check("same seed, same data", equal(twin.x, data.x) && equal(twin.y, data.y), "bit for bit");
    }
    verifier.check("every x lies in [−π, π]", max(data.x).item() <= pi && min(data.x).item() >= -pi,
                   fmt::format("min {:.4f}, max {:.4f}", min(data.x).item(), max(data.x).item()));
    // The mean of N draws of σε has standard error σ/√N; the mean of N draws of σ²ε², σ²·√(2/N).
    // Each check allows four standard errors.
    const double n = static_cast<double>(n_data);
    verifier.check_error("|noise mean| (bound: 4 s.e.)", std::abs(noise_mean), 4 * noise_std / std::sqrt(n));
    verifier.check_close("noise floor (±4 s.e.)", {"sample", noise_floor}, {"σ²", noise_std * noise_std},
                         4 * std::sqrt(2 / n), 0);

    // ------------------------------------------------------------------------------------------
    verifier.section("The model");
    std::unique_ptr<nn::MLP> model_ptr = make_model(init_seed);
    nn::MLP& model = *model_ptr;
    fmt::print(
        "nn::MLP({{1, 32, 32, 1}}, rng, {{.activation = nn::Activation::tanh}}) is a Sequential of\n"
        "Linear(1 → 32), Tanh, Linear(32 → 32), Tanh, Linear(32 → 1):\n"
        "    ŷ = tanh(tanh(x·W₀ + b₀)·W₁ + b₁)·W₂ + b₂\n"
        "Linear k's parameters are named \"2k.weight\" and \"2k.bias\": names count positions in the\n"
        "Sequential, and the Tanh layers at positions 1 and 3 have no parameters. model.summary():\n\n");
    print_indented(model.summary());
    std::size_t formula_count = 0;
    for (std::size_t k = 0; k + 1 < layer_sizes.size(); ++k) formula_count += layer_sizes[k] * layer_sizes[k + 1] + layer_sizes[k + 1];
    fmt::print(
        "\nA Linear(in → out) has in·out weights and out biases: Σ (in·out + out) =\n"
        "    (1·32 + 32) + (32·32 + 32) + (32·1 + 1) = 64 + 1056 + 33 = {}\n\n",
        formula_count);
    verifier.check_close("parameter count", {"model", static_cast<double>(model.parameter_count())},
                         {"Σ (in·out + out)", static_cast<double>(formula_count)}, 0, 0);
    {
        // PyTorch's default: W and b of a Linear(in → out) are drawn from U(±1/√in) (nn/linear.hpp).
        bool inside = true;
        std::string bounds;
        for (std::size_t k = 0; k < model.depth(); ++k) {
            const nn::Linear& layer = model.linear(k);
            const double bound = 1 / std::sqrt(static_cast<double>(layer.in_features()));
            const double largest = std::max(max(abs(layer.weight().value)).item(), max(abs(layer.bias()->value)).item());
            inside = inside && largest <= bound;
            bounds += fmt::format("{}{:.3f} ≤ {:.3f}", k ? ", " : "", largest, bound);
        }
        verifier.check("initial |W|, |b| ≤ 1/√in", inside, bounds);
    }
    const Tensor prediction0 = predict(model, data.x);
    const Tensor by_hand0 = forward_by_hand(model, data.x).back();
    fmt::print("\nThe forward pass is that formula and nothing else; computed with tensor ops, without the tape:\n\n");
    verifier.check_error("max |model(x) − formula|", max_abs_diff(prediction0, by_hand0), 1e-14);

    // ------------------------------------------------------------------------------------------
    verifier.section("One step by hand");
    // A twin from the same seed takes this step, so the model itself starts section 4 untouched.
    std::unique_ptr<nn::MLP> twin_ptr = make_model(init_seed);
    nn::MLP& twin = *twin_ptr;
    nn::Adam twin_optimizer(twin.parameters(), {.lr = lr});
    fmt::print(
        "A twin of the model (same seed, so the same weights: max |diff| = {}) takes the first step of\n"
        "training, with {},\nwhile we recompute each part of it by hand.\n\n"
        "Forward: the loss L = (1/N) Σᵢ (ŷᵢ − yᵢ)² over all N = {} samples.\n\n",
        max_parameter_diff(model, twin), twin_optimizer.name(), n_data);
    twin_optimizer.zero_grad();
    const Var prediction = twin(Var(data.x));
    const Var loss = mse(prediction, Var(data.y));
    double loss_by_hand = 0;
    for (std::size_t i = 0; i < n_data; ++i) {
        const double r = prediction.value()[i] - data.y[i];
        loss_by_hand += r * r;
    }
    loss_by_hand /= n;
    verifier.check_close("loss", {"tape", loss.item()}, {"plain loop", loss_by_hand}, 1e-13, 0);
    const double first_loss = loss.item();

    fmt::print(
        "\nBackward: tape.backward(loss) fills each parameter's .grad. By hand, the chain rule from the\n"
        "output back: δ = ∂L/∂ŷ = 2(ŷ − y)/N, and for each Linear k = 2, 1, 0,\n"
        "    ∂L/∂W_k = h_kᵀ·δ    ∂L/∂b_k = Σ_rows δ    δ ← (δ·W_kᵀ) ⊙ (1 − h_k²)   (tanh' = 1 − tanh²)\n"
        "where h_k is the layer's input (h₀ = x). Largest difference per parameter:\n\n");
    tape.backward(loss);
    const auto hand_grads = backward_by_hand(twin, forward_by_hand(twin, data.x), data.y);
    const auto named = twin.named_parameters();
    for (std::size_t k = 0; k < named.size(); ++k) {
        const Tensor& tape_grad = named[k].second->grad;
        const Tensor& hand_grad = hand_grads[k].second;
        const Tensor gap = abs(tape_grad - hand_grad);
        const std::size_t worst = static_cast<std::size_t>(
            std::max_element(gap.span().begin(), gap.span().end()) - gap.span().begin());
        verifier.check_close(fmt::format("∂L/∂{} {}", named[k].first, tape_grad.shape()), {"tape", tape_grad[worst]},
                             {"by hand", hand_grad[worst]}, 1e-10, 1e-15);
    }

    // Adam on one entry: the second hidden layer's weight with the largest gradient.
    Parameter& w2 = twin.linear(1).weight();
    const std::size_t entry = static_cast<std::size_t>(
        std::max_element(w2.grad.span().begin(), w2.grad.span().end(),
                         [](double a, double b) { return std::abs(a) < std::abs(b); }) -
        w2.grad.span().begin());
    const std::size_t w2_index = 2;  // 0.weight, 0.bias, 2.weight, ...: its index among the parameters
    const double g = w2.grad[entry], p0 = w2.value[entry];
    std::vector<Tensor> p_before, g_before;
    for (Parameter* p : twin.parameters()) {
        p_before.push_back(p->value.clone());
        g_before.push_back(p->grad.clone());
    }
    twin_optimizer.step();
    tape.clear();
    const nn::AdamOptions& adam = twin_optimizer.options();
    const double t = 1;
    const double m = (1 - adam.beta1) * g, v = (1 - adam.beta2) * g * g;  // from m₀ = v₀ = 0
    const double m_hat = m / (1 - std::pow(adam.beta1, t)), v_hat = v / (1 - std::pow(adam.beta2, t));
    const double p1 = p0 - lr * m_hat / (std::sqrt(v_hat) + adam.eps);
    double adam_m = 0, adam_v = 0;
    for (auto& [name, tensor] : twin_optimizer.state()) {
        if (name == fmt::format("adam.m.{}", w2_index)) adam_m = (*tensor)[entry];
        if (name == fmt::format("adam.v.{}", w2_index)) adam_v = (*tensor)[entry];
    }
    fmt::print(
        "\nAdam, for one entry: 2.weight[{}, {}], the largest gradient of that layer, g = {:.10g}.\n"
        "At t = 1, from m₀ = v₀ = 0:\n"
        "    m = β₁m₀ + (1 − β₁)g      = {:.10g}      m̂ = m/(1 − β₁ᵗ) = {:.10g}  (= g)\n"
        "    v = β₂v₀ + (1 − β₂)g²     = {:.10g}      v̂ = v/(1 − β₂ᵗ) = {:.10g}  (= g²)\n"
        "    Δp = −lr·m̂/(√v̂ + ε)      = {:+.12g}\n"
        "    p ← p + Δp                = {:.12g} {} {:.12g} = {:.12g}\n\n",
        entry / w2.shape()[1], entry % w2.shape()[1], g, m, m_hat, v, v_hat, p1 - p0, p0, p1 < p0 ? "−" : "+",
        std::abs(p1 - p0), p1);
    verifier.check_close("m", {"Adam's state", adam_m}, {"by hand", m}, 1e-15, 0);
    verifier.check_close("v", {"Adam's state", adam_v}, {"by hand", v}, 1e-15, 0);
    verifier.check_close("Δp", {"Adam's step", w2.value[entry] - p0}, {"by hand", p1 - p0}, 1e-12, 0);
    {
        // At t = 1 the update is −lr·g/(|g| + ε): every entry moves by lr·|g|/(|g| + ε), within
        // lr·ε/|g| of lr, against its gradient.
        const double g_min = 1e-4;
        double worst = 0;
        std::size_t counted = 0;
        const auto params = twin.parameters();
        for (std::size_t k = 0; k < params.size(); ++k)
            for (std::size_t i = 0; i < params[k]->numel(); ++i) {
                if (std::abs(g_before[k][i]) < g_min) continue;
                const double moved = -(params[k]->value[i] - p_before[k][i]) * (g_before[k][i] > 0 ? 1 : -1);
                worst = std::max(worst, std::abs(moved - lr));
                ++counted;
            }
        fmt::print(
            "\nWith bias correction the first step moves every entry by lr against its gradient's sign\n"
            "(m̂/√v̂ = g/|g|); without it, by lr·(1 − β₁)/√(1 − β₂) = {:.3g}·lr. Over the {} of {} entries\n"
            "with |g| ≥ {:g} the exact step lr·|g|/(|g| + ε) is within lr·ε/|g| ≤ {:.1e} of lr:\n\n",
            (1 - adam.beta1) / std::sqrt(1 - adam.beta2), counted, twin.parameter_count(), g_min,
            lr * adam.eps / g_min);
        verifier.check_error("max | |Δp| − lr | at t = 1", worst, lr * adam.eps / g_min * (1 + 1e-6));
    }

    fmt::print(
        "\nFinally gradcheck (tutorial 01) compares the gradient of the loss on a small batch with\n"
        "central differences, for the input x and all {} parameters (perturbed in place, restored after):\n\n"
        "    gradcheck(f, {{x}}, {{.parameters = model.parameters()}}),  f(x) = mse(model(x), y), 8 samples\n\n",
        twin.parameter_count());
    {
        const Tensor x8 = Tensor(Shape{8, 1}, std::vector<double>(data.x.data(), data.x.data() + 8));
        const Tensor y8 = Tensor(Shape{8, 1}, std::vector<double>(data.y.data(), data.y.data() + 8));
        const auto f = [&twin, &y8](const std::vector<Var>& in) { return mse(twin(in[0]), Var(y8)); };
        const GradcheckResult result = gradcheck(f, {x8}, {.parameters = twin.parameters()});
        print_indented(result.report);
        fmt::print("\n");
        verifier.check("gradcheck passes", result.ok,
                       fmt::format("{} + {} derivatives of one output", x8.numel(), twin.parameter_count()));
    }

    // ------------------------------------------------------------------------------------------
    verifier.section("The training loop");
    nn::Adam optimizer(model.parameters(), {.lr = lr});
    fmt::print(
        "{} steps of full-batch {}. Each step:\n\n"
        "    optimizer.zero_grad();                       // .grad ← 0 (backward adds into it)\n"
        "    Var loss = mse(model(x), y);                 // records the forward pass on the tape\n"
        "    tape.backward(loss);                         // one reverse sweep: every .grad\n"
        "    optimizer.step();                            // the Adam update of section 3\n"
        "    losses.push_back(loss.item());               // a plain double, not a tape node\n"
        "    tape.clear();                                // drop this step's nodes, keep the memory\n"
        "    if (!progress.update(step, losses.back())) break;   // stops on a NaN or inf loss\n\n",
        steps, optimizer.name());
    std::vector<double> losses, tape_bytes;
    std::size_t nodes_per_step = 0, size_after_clear = 0;
    std::string first_step_tape;
    nn::Progress progress(steps, {.label = "fit sin"});
    for (std::uint64_t step = 1; step <= steps; ++step) {
        optimizer.zero_grad();
        const Var step_loss = mse(model(Var(data.x)), Var(data.y));
        tape.backward(step_loss);
        optimizer.step();
        losses.push_back(step_loss.item());
        nodes_per_step = tape.size();
        if (step == 1) first_step_tape = tape.dump();
        tape_bytes.push_back(static_cast<double>(tape.bytes()));
        tape.clear();
        size_after_clear = std::max(size_after_clear, tape.size());
        if (!progress.update(step, losses.back())) break;
    }
    progress.finish();
    const double final_loss = mse(Var(predict(model, data.x)), Var(data.y)).item();
    fmt::print(
        "\nThe loss per step, log–log ({} points; the first is section 3's loss):\n\n", losses.size());
    {
        std::vector<double> step_axis(losses.size());
        for (std::size_t i = 0; i < losses.size(); ++i) step_axis[i] = static_cast<double>(i + 1);
        print_indented(plot::ascii_plot(step_axis, losses, 64, 12, true, true));
    }
    fmt::print(
        "\nWhat one step records, tape.dump() of step 1 (parameters are leaves; x and y enter as\n"
        "constants; one node per Linear, per tanh, and three for the loss):\n\n");
    print_indented(first_step_tape);
    fmt::print(
        "\n{} nodes, holding {:.1f} KiB (values and gradients) at the end of every step. tape.clear()\n"
        "drops them and keeps the capacity, so memory stays flat however long the run:\n\n",
        nodes_per_step, tape_bytes.back() / 1024);
    verifier.check_close("step 1 loss", {"training loop", losses.front()}, {"section 3's twin", first_loss}, 0, 0);
    verifier.check("tape.size() after clear() is 0", size_after_clear == 0, fmt::format("{}", size_after_clear));
    const auto [bytes_lo, bytes_hi] = std::minmax_element(tape_bytes.begin(), tape_bytes.end());
    verifier.check("tape.bytes() flat over the run", *bytes_hi == *bytes_lo,
                   fmt::format("{:.0f} to {:.0f} bytes at the end of every step", *bytes_lo, *bytes_hi));
    fmt::print(
        "\nThe final loss, over all {} samples, evaluated under NoGrad after the last step, against\n"
        "the noise floor {:.6f} of section 1:\n\n",
        n_data, noise_floor);
    verifier.check("every loss is finite", losses.size() == steps && progress.nonfinite_losses() == 0,
                   fmt::format("{} of {} steps ran", losses.size(), steps));
    // What training can remove is the loss above the noise floor; 90% of it must be gone.
    verifier.check("90% of the excess loss gone", final_loss - noise_floor < (first_loss - noise_floor) / 10,
                   fmt::format("{:.6f} → {:.6f}, floor {:.6f}", first_loss, final_loss, noise_floor));
    if (!opt.quick && steps >= 3000)
        verifier.check("final loss < noise floor + 10%", final_loss < 1.1 * noise_floor,
                       fmt::format("{:.6f} vs {:.6f}", final_loss, 1.1 * noise_floor));

    // ------------------------------------------------------------------------------------------
    verifier.section("The fit");
    const std::size_t n_grid = 401;
    const Tensor grid = Tensor::linspace(-pi, pi, n_grid).reshape(Shape{n_grid, 1});
    const Tensor fit = predict(model, grid);
    const Tensor truth = sin(grid);
    const double fit_rms = rms(fit, truth), fit_max = max(abs(fit - truth)).item();
    const Tensor residual = predict(model, data.x) - data.y;
    fmt::print(
        "The model on {} evenly spaced points of [−π, π] (an ascii_plot of ŷ against x):\n\n", n_grid);
    print_indented(plot::ascii_plot(grid.span(), fit.span(), 64, 14));
    const std::string fit_path = (out_dir / "fit.svg").string(), loss_path = (out_dir / "loss_curve.svg").string();
    {
        plot::Figure fig(1, 1, 720, 460);
        plot::Axes& ax = fig.axes(0, 0);
        ax.set_title(fmt::format("{} after {} Adam steps", model.name(), losses.size()));
        ax.set_xlabel("x").set_ylabel("y").set_xlim(-pi, pi).set_ylim(-1.8, 1.8);
        ax.scatter(data.x.span(), data.y.span(),
                   {.colour = "#7f7f7f", .radius = 1.6, .opacity = 0.5, .label = fmt::format("data (σ = {})", noise_std)});
        ax.line(grid.span(), truth.span(), {.colour = "#2ca02c", .width = 1.4, .dashed = true, .label = "sin x"});
        ax.line(grid.span(), fit.span(), {.colour = "#d62728", .width = 2.0, .label = "model ŷ(x)"});
        ax.legend();
        fig.save(fit_path);
    }
    {
        plot::Figure fig(1, 1, 720, 460);
        plot::Axes& ax = fig.axes(0, 0);
        std::vector<double> step_axis(losses.size());
        for (std::size_t i = 0; i < losses.size(); ++i) step_axis[i] = static_cast<double>(i + 1);
        ax.set_title(fmt::format("Training loss: Adam, lr = {:g}, full batch of {}", lr, n_data));
        // Whole decades, so the log axis gets a tick at every power of ten.
        const double lo = std::pow(10.0, std::floor(std::log10(std::min(noise_floor, *std::min_element(losses.begin(), losses.end())))));
        const double hi = std::pow(10.0, std::ceil(std::log10(*std::max_element(losses.begin(), losses.end()))));
        ax.set_xlabel("step").set_ylabel("mean squared error").set_log_x().set_log_y().set_ylim(lo, hi);
        ax.line(step_axis, losses, {.colour = "#1f77b4", .label = "training loss"});
        ax.hline(noise_floor, {.colour = "#555555", .width = 1.2, .dashed = true,
                               .label = fmt::format("noise floor {:.4f} (loss of sin x)", noise_floor)});
        ax.legend();
        fig.save(loss_path);
    }
    fmt::print(
        "\nFigures: {} (data, sin x and the model) and {} (loss, log scale).\n"
        "Against the true function on the grid: RMS error {:.4f}, max error {:.4f}. The residuals\n"
        "ŷᵢ − yᵢ on the data should look like the noise (mean 0, standard deviation σ = {}):\n\n",
        fit_path, loss_path, fit_rms, fit_max, noise_std);
    verifier.check("both SVG files written",
                   std::filesystem::file_size(fit_path) > 0 && std::filesystem::file_size(loss_path) > 0);
    if (!opt.quick && steps >= 3000) {
        verifier.check_error("RMS |ŷ − sin| on the grid", fit_rms, 0.05);
        verifier.check_close("residual RMS (±10%)", {"fit", std::sqrt(mean(square(residual)).item())}, {"σ", noise_std},
                             0.1, 0);
    } else {
        verifier.check_error("RMS |ŷ − sin| (quick)", fit_rms, 0.3);
    }
    verifier.check_error("|residual mean| (bound: 4 s.e.)", std::abs(mean(residual).item()), 4 * noise_std / std::sqrt(n));

    // ------------------------------------------------------------------------------------------
    verifier.section("Checkpoint: save, reload, resume");
    const std::string ckpt_path = (out_dir / "model.ckpt").string();
    std::uint64_t step_saved = optimizer.step_count();
    nn::save_checkpoint(ckpt_path, model, training_state(optimizer, step_saved));
    const nn::CheckpointInfo info = nn::read_checkpoint_info(ckpt_path);
    fmt::print(
        "save_checkpoint(\"{}\", model, extras) writes the 6 parameters, Adam's m and v for each\n"
        "(under \"optimizer/\") and the step count {}, with a checksum; atomically, so a crash never\n"
        "leaves half a file. read_checkpoint_info lists it:\n\n",
        ckpt_path, step_saved);
    {
        std::vector<std::vector<std::string>> rows;
        // magic, version, has_step, step, entry count, configuration count (none stored), checksum
        std::uint64_t layout_bytes = 8 + 4 + 4 + 8 + 4 + 4 + 8;
        for (const nn::CheckpointEntry& e : info.entries) {
            std::size_t numel = 1;
            for (std::size_t d = 0; d < e.shape.rank(); ++d) numel *= e.shape[d];
            layout_bytes += 4 + e.name.size() + 4 + 8 * e.shape.rank() + 8 * numel;
            rows.push_back({e.name, e.shape.str()});
        }
        print_indented(plot::ascii_table({"entry", "shape"}, rows));
        fmt::print("\n");
        verifier.check_close("entries", {"in the file", static_cast<double>(info.entries.size())},
                             {"3 × parameters", 3.0 * named.size()}, 0, 0);
        verifier.check_close("file bytes", {"on disk", static_cast<double>(info.file_bytes)},
                             {"layout formula", static_cast<double>(layout_bytes)}, 0, 0);
        verifier.check("stored step = optimizer's", info.step && *info.step == optimizer.step_count(),
                       fmt::format("{}", info.step.value_or(0)));
    }

    std::unique_ptr<nn::MLP> fresh_ptr = make_model(init_seed + 1);
    nn::MLP& fresh = *fresh_ptr;
    nn::Adam fresh_optimizer(fresh.parameters(), {.lr = lr});
    const double diff_before = max_abs_diff(predict(fresh, grid), fit);
    std::uint64_t step_loaded = 0;
    nn::load_checkpoint(ckpt_path, fresh, training_state(fresh_optimizer, step_loaded));
    fresh_optimizer.set_step_count(step_loaded);
    const double diff_after = max_abs_diff(predict(fresh, grid), fit);
    fmt::print(
        "\nA fresh model from another seed predicts differently (max |diff| {:.3g} on the grid). After\n"
        "load_checkpoint into it and a fresh Adam (and set_step_count({})), its predictions are the\n"
        "same doubles, bit for bit:\n\n",
        diff_before, step_loaded);
    verifier.check("differs before loading", diff_before > 0.01, fmt::format("max |diff| {:.3g}", diff_before));
    verifier.check_error("max |diff| after loading", diff_after, 0);

    // Loading only the weights (a fresh Adam: m = v = 0, t = 0) is not a resume: its next step is a
    // first step again, of size lr in every coordinate.
    std::unique_ptr<nn::MLP> weights_only_ptr = make_model(init_seed + 1);
    nn::MLP& weights_only = *weights_only_ptr;
    nn::load_checkpoint(ckpt_path, weights_only, {}, nn::UnusedEntries::ignore);
    nn::Adam weights_only_optimizer(weights_only.parameters(), {.lr = lr});
    const double resumed_loss = train_step(model, optimizer, data);
    const double reloaded_loss = train_step(fresh, fresh_optimizer, data);
    train_step(weights_only, weights_only_optimizer, data);
    fmt::print(
        "\nOne more training step on the original and on the reloaded model (each with its optimizer),\n"
        "then every parameter compared. A third copy loaded with the weights only (a new Adam with\n"
        "m = v = 0, t = 0) takes a different step: its update is the full lr of a first step:\n\n");
    verifier.check_close("resumed loss", {"reloaded", reloaded_loss}, {"original", resumed_loss}, 0, 0);
    verifier.check_error("max |Δ parameters| after resume", max_parameter_diff(model, fresh), 0);
    verifier.check_close("step count", {"reloaded", static_cast<double>(fresh_optimizer.step_count())},
                         {"original", static_cast<double>(optimizer.step_count())}, 0, 0);
    const double weights_only_diff = max_parameter_diff(model, weights_only);
    verifier.check("weights only: not a resume", weights_only_diff > lr / 2,
                   fmt::format("max |Δ parameters| {:.3g} (lr = {:g})", weights_only_diff, lr));

    verifier.summary();
    return verifier.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
    tapeflow::tutorial::Cli cli("02_modules_and_training",
                                "Fit an MLP to noisy sin from scratch: the model, MSE, Adam by hand, the training "
                                "loop, figures and a checkpoint");
    cli.integer("--steps", {"3000", "200"}, {1, 10'000'000}, "training steps")
        .real("--lr", "0.003", {0, 1, true}, "Adam's learning rate");
    return tapeflow::tutorial::run_tutorial(argc, argv, cli, run);
}
