// Throughput of conv2d (tensor/conv.hpp) in GFLOP/s at the shapes of a multi-scale RealNVP's
// conditioners on Fashion-MNIST (batch 64; 16 channels at 28 × 28 and 14 × 14, 32 at 14 × 14 and 7 × 7;
// 3 × 3 kernels), one thread, medians over repeats (bench/bench_table.hpp).
//
// Each convolution is 2·N·H·W·C_out·C_in·k² flops forward, and as many again for each of its two
// backward products (dx and dW; db is a sum). Rates are per CPU-second (the machine is shared), as a
// percentage of a 512³ gemm measured first in the same run; the details also give gemm's rate on the
// very products the lowering forms (one call over the whole batch, operands ready-made), which is
// what a convolution could reach if building X̂ and regrouping images cost nothing.
//
// The last rows are one training step of the multi-scale RealNVP the convolutions serve
// (make_multiscale_realnvp's defaults: the paper's Sec. 4.1 shape on 1 × 28 × 28, batch 64, Adam):
// forward, backward, update and tape.clear(), CPU milliseconds, median over timed steps; once on one
// thread and once on two (convolution chunks and large products split over tensor/parallel's pool).
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "bench/bench_table.hpp"
#include "flows/multiscale.hpp"
#include "nn/optimizer.hpp"
#include "tensor/conv.hpp"
#include "tensor/gemm.hpp"
#include "tensor/micro_kernel.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;

namespace {

using kernels::Transpose;

struct ConvShape {
    std::size_t n, channels, size, k;
};

double gflops(double flops, double seconds) { return flops / seconds * 1e-9; }

// Seconds per call of gemm on random operands of one product's shape.
double gemm_seconds(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, Rng& rng) {
    const Tensor a = randn(Shape{M * K}, rng);
    const Tensor b = randn(Shape{K * N}, rng);
    Tensor c(Shape{M * N});
    const std::size_t lda = ta == Transpose::no ? K : M;
    const std::size_t ldb = tb == Transpose::no ? N : K;
    return bench::median_seconds_per_call([&] {
               kernels::gemm(ta, tb, M, N, K, a.data(), lda, b.data(), ldb, c.data(), N, false, 1);
           }).cpu;
}

// CPU milliseconds of one training step (and of its forward and backward passes), medians over
// `repeats` steps after one warm-up step (which sizes the tape and fills the storage cache); with
// `threads` > 1 also the wall milliseconds (what tutorial 10's --threads 2 waits for).
void training_step_row(int repeats, int threads) {
    const int before = num_threads();
    set_num_threads(threads);
    auto flow = flows::make_multiscale_realnvp({});
    nn::Adam adam(flow->parameters(), {.lr = 1e-3});
    Rng rng(5);
    const Tensor x = rand(Shape{64, flow->dim()}, rng, -3.0, 3.0);
    Tape& tape = Tape::current();
    std::vector<double> step, forward, backward, wall;
    for (int r = 0; r <= repeats; ++r) {
        const auto w0 = bench::clock_type::now();
        const double c0 = bench::process_cpu_seconds();
        adam.zero_grad();
        const Var loss = -mean(flow->log_prob(Var(x)));
        const double c1 = bench::process_cpu_seconds();
        tape.backward(loss);
        const double c2 = bench::process_cpu_seconds();
        adam.step();
        tape.clear();
        const double c3 = bench::process_cpu_seconds();
        const double w = bench::seconds_between(w0, bench::clock_type::now());
        if (r == 0) continue;
        wall.push_back(w * 1e3);
        step.push_back((c3 - c0) * 1e3);
        forward.push_back((c1 - c0) * 1e3);
        backward.push_back((c2 - c1) * 1e3);
    }
    bench::print_row("conv", fmt::format("multi-scale RealNVP step, 64×1×28×28, {} thread{}", threads, threads == 1 ? "" : "s"),
                     bench::median(step), 1, "cpu-ms",
                     fmt::format("forward {:.1f}, backward {:.1f}; {} parameters; wall {:.1f} ms", bench::median(forward),
                                 bench::median(backward), flow->parameter_count(), bench::median(wall)));
    set_num_threads(before);
}

}  // namespace

// Usage: bench_conv [--no-header] [--step-only REPEATS]. --step-only prints only the training-step rows,
// over REPEATS timed steps each (for profiling a step, or alternating an old and a new binary).
int main(int argc, char** argv) {
    if (bench::wants_header(argc, argv)) bench::print_header();
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--step-only") {
            const int repeats = std::atoi(argv[i + 1]);
            if (repeats < 1) {
                fmt::print(stderr, "bench_conv: --step-only needs a positive number of steps, got '{}'\n", argv[i + 1]);
                return 2;
            }
            training_step_row(repeats, 1);
            training_step_row(repeats, 2);
            return 0;
        }
    Rng rng(3);
    // The gemm rate the convolutions are held to: a square product large enough to run at the
    // micro-kernel's speed.
    const std::size_t square = 512;
    const double gemm_rate = gflops(2.0 * square * square * square,
                                    gemm_seconds(Transpose::no, Transpose::no, square, square, square, rng));
    bench::print_row("conv", fmt::format("gemm {0}×{0}·{0}×{0}, 1 thread (the reference)", square), gemm_rate, 1,
                     "GFLOP/s", fmt::format("per cpu-second; kernel {}", kernels::active_kernel_name()));
    for (const ConvShape& s : std::vector<ConvShape>{{64, 16, 28, 3}, {64, 16, 14, 3}, {64, 32, 14, 3}, {64, 32, 7, 3}}) {
        const std::size_t c = s.channels, k = s.k, pixels = s.n * s.size * s.size;
        const Tensor x = randn(Shape{s.n, c, s.size, s.size}, rng);
        const Tensor w = randn(Shape{c, c, k, k}, rng, 0.0, 0.1);
        const Tensor b = randn(Shape{c}, rng);
        const Tensor dy = randn(Shape{s.n, c, s.size, s.size}, rng);
        const double flops = 2.0 * static_cast<double>(pixels * c * c * k * k);

        const double forward = bench::median_seconds_per_call([&] { (void)conv2d(x, w, b); }).cpu;
        const double backward = bench::median_seconds_per_call([&] {
                                    (void)conv2d_input_grad(dy, w);
                                    (void)conv2d_weight_grad(x, dy, k);
                                    (void)conv2d_bias_grad(dy);
                                }).cpu;
        // The products of the lowering as single calls: Y = W·X̂ [C, C·k²]·[C·k², pixels] (dx's is the
        // same shape: the adjoint convolution) and dW = dY·X̂ᵀ [C, pixels]·[pixels, C·k²].
        const double gemm_forward = gemm_seconds(Transpose::no, Transpose::no, c, pixels, c * k * k, rng);
        const double gemm_weight = gemm_seconds(Transpose::no, Transpose::yes, c, c * k * k, pixels, rng);

        const std::string name = fmt::format("conv2d {}×{}×{}×{}, {}×{}, {} → {}", s.n, c, s.size, s.size, k, k, c, c);
        const auto row = [&](const char* part, double part_flops, double seconds, double gemm_seconds_of_products,
                             const std::string& extra) {
            const double rate = gflops(part_flops, seconds);
            bench::print_row("conv", fmt::format("{} {}, 1 thread", name, part), rate, 1, "GFLOP/s",
                             fmt::format("{:.0f}% of gemm; gemm alone on its products {:.1f}{}", 100 * rate / gemm_rate,
                                         gflops(part_flops, gemm_seconds_of_products), extra));
        };
        row("fwd", flops, forward, gemm_forward, "");
        row("bwd", 2 * flops, backward, gemm_forward + gemm_weight, "");
        row("fwd+bwd", 3 * flops, forward + backward, 2 * gemm_forward + gemm_weight,
            fmt::format("; {:.2f} cpu-ms", (forward + backward) * 1e3));
    }
    training_step_row(3, 1);
    training_step_row(3, 2);
}
