// Training-step time of plain MLPs: forward + backward + Adam step + tape.clear(), with the loss the
// mean of the squared outputs; the median over timed steps after warm-up steps (which size the tape
// and fill the storage cache). Kernels run on num_threads() threads (1 by default). Beside the
// wall-clock step time, `cpu` is the process CPU time per step (all threads, user + system): on a
// machine shared with other jobs it stays close to the unloaded step time while wall time grows.
//
// The 2-64-64-4 row is one conditioner of the two-moons RealNVP (bench_train runs the whole flow);
// the 784-512-512-1568 row is a Fashion-MNIST conditioner, where the matrix products dominate.
#include <cstddef>
#include <ctime>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "bench/bench_table.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "tensor/parallel.hpp"

using namespace tapeflow;

namespace {

double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

void row(const std::vector<std::size_t>& sizes, std::size_t batch, int warmup, int repeats) {
    Rng rng(0);
    nn::MLP model(sizes, rng);
    nn::Adam adam(model.parameters(), {.lr = 1e-4});
    const Tensor x = randn(Shape{batch, sizes.front()}, rng);
    Tape& tape = Tape::current();
    std::vector<double> step, cpu, forward, backward, update;
    double sink = 0;  // keeps the loss alive so nothing is optimized away
    for (int r = 0; r < warmup + repeats; ++r) {
        const double c0 = process_cpu_ms();
        const auto t0 = bench::clock_type::now();
        adam.zero_grad();
        const Var loss = mean(square(model(Var(x))));
        const auto t1 = bench::clock_type::now();
        tape.backward(loss);
        const auto t2 = bench::clock_type::now();
        adam.step();
        const auto t3 = bench::clock_type::now();
        sink += loss.item();
        tape.clear();
        const auto t4 = bench::clock_type::now();
        const double c4 = process_cpu_ms();
        if (r < warmup) continue;
        step.push_back(bench::seconds_between(t0, t4) * 1e3);
        cpu.push_back(c4 - c0);
        forward.push_back(bench::seconds_between(t0, t1) * 1e3);
        backward.push_back(bench::seconds_between(t1, t2) * 1e3);
        update.push_back(bench::seconds_between(t2, t3) * 1e3);
    }
    if (sink == 0.123456789) fmt::print("");  // never true; uses sink
    bench::print_row("nn", fmt::format("mlp {} b{}, train step", fmt::join(sizes, "-"), batch), bench::median(step), 3,
                     "ms",
                     fmt::format("cpu {:.3f}; forward {:.3f}, backward {:.3f}, adam {:.3f} ms; {} thread{}",
                                 bench::median(cpu), bench::median(forward), bench::median(backward),
                                 bench::median(update), num_threads(), num_threads() == 1 ? "" : "s"));
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::wants_header(argc, argv)) bench::print_header();
    row({2, 64, 64, 4}, 512, 20, 200);
    row({784, 512, 512, 1568}, 256, 3, 21);
}
