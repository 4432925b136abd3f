// The rational-quadratic spline (flows/spline.hpp) on the tape: forward + backward of g and of g⁻¹
// with respect to the raw parameters, per entry, with the in-bin formulas as one fused node
// (SplineOptions::fused, a hand-derived backward) and composed from tape ops, beside the affine map
// x = z·exp(s) + t that a RealNVP coupling applies to the same entries.
//
//   spline   N = 512 samples × M = 2 coordinates, K = 8 bins on [−4, 4] (the shape of tutorial 11's
//            spline coupling flow: one raw row of 3K − 1 per entry), half the points in the tails
//   softmax  the knots' softmax (and log_softmax) alone on [N, M, K], with a weighted sum as the loss
//
// Usage: bench_spline [--no-header]
#include <cstddef>
#include <string>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "bench/bench_table.hpp"
#include "flows/spline.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"

namespace {

using namespace tapeflow;

constexpr std::size_t n = 512, m = 2, bins = 8;

}  // namespace

int main(int argc, char** argv) {
    if (bench::wants_header(argc, argv)) bench::print_header();
    Rng rng(0);
    const flows::SplineOptions fused{.bins = bins, .bound = 4};
    flows::SplineOptions composed = fused;
    composed.fused = false;
    Parameter raw(randn(Shape{n, m, flows::spline_parameters_per_dim(bins)}, rng));
    Parameter scale(randn(Shape{n, m}, rng) * 0.3), shift(randn(Shape{n, m}, rng));
    const Tensor points = randn(Shape{n, m}, rng) * 4.0;  // |u| > 4 for about a third of them
    Tape& tape = Tape::current();
    auto step = [&](auto&& map) {
        raw.zero_grad();
        scale.zero_grad();
        shift.zero_grad();
        const Var loss = map(Var(points));
        tape.backward(loss);
        tape.clear();
    };
    const double entries = static_cast<double>(n * m);
    const std::string details = fmt::format("N·M = {} entries, K = {}, raw [N, M, {}]", n * m, bins, 3 * bins - 1);
    double affine_cpu = 0;
    for (const char* which : {"affine", "spline g, fused", "spline g, composed", "spline g⁻¹, fused", "spline g⁻¹, composed"}) {
        const std::string name = which;
        const bool inverse = name.find("⁻¹") != std::string::npos;
        const flows::SplineOptions& options = name.find("composed") != std::string::npos ? composed : fused;
        const bench::Timing t = bench::median_seconds_per_call([&] {
            step([&](const Var& u) {
                if (name == "affine") return sum(u * exp(scale.var()) + shift.var()) + sum(scale.var());
                const flows::SplineValue s = flows::rational_quadratic_spline(u, raw.var(), options, inverse);
                return sum(s.value) + sum(s.log_derivative);
            });
        });
        const double per_entry = t.cpu * 1e9 / entries;
        if (name == "affine") affine_cpu = t.cpu;
        bench::print_row("spline", fmt::format("{}, forward + backward, CPU per entry", which), per_entry, 1, "ns",
                         name == "affine" ? details : fmt::format("{}; {:.1f}× the affine map", details, t.cpu / affine_cpu));
    }
    // The knots' softmax alone (two per entry: widths and heights), over the same raw rows of K.
    Parameter logits(randn(Shape{n, m, bins}, rng));
    for (const char* which : {"softmax", "log_softmax"}) {
        const std::string name = which;
        const Tensor weights = randn(Shape{n, m, bins}, rng);
        const bench::Timing t = bench::median_seconds_per_call([&] {
            logits.zero_grad();
            const Var y = name == "softmax" ? softmax(logits.var(), 2) : log_softmax(logits.var(), 2);
            tape.backward(sum(y * Var(weights)));
            tape.clear();
        });
        bench::print_row("spline", fmt::format("{} along K, forward + backward, CPU per element", which),
                         t.cpu * 1e9 / (entries * bins), 1, "ns",
                         fmt::format("[N, M, K] = [{}, {}, {}], weighted sum as the loss", n, m, bins));
    }
    return 0;
}
