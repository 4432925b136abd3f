// Training-step time of MLPs: forward + backward + Adam step + tape.clear(), with the loss the mean of
// the squared outputs. Each row is the median over `repeats` timed steps after warm-up steps (which
// size the tape and let the allocator settle). Kernels run on num_threads() threads (1 by default).
// Beside the wall-clock step time, `cpu` is the process CPU time per step (all threads, user + system):
// on a machine shared with other jobs it stays close to the unloaded step time while wall time grows.
//
// The 2-64-64-4 row is the RealNVP conditioner of the two-moons tutorial (THEORY.md §8 quotes
// 12-15 ms per step for 8 couplings with two such networks each in PyTorch); the 784-512-512-1568
// row is a Fashion-MNIST-sized conditioner, where the matrix products dominate.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstddef>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizer.hpp"
#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"

using namespace tapeflow;

namespace {

using clock_type = std::chrono::steady_clock;

struct StepTimes {
    double step_ms;
    double cpu_ms;
    double forward_ms;
    double backward_ms;
    double optimizer_ms;
};

double ms(clock_type::time_point a, clock_type::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
}

StepTimes bench_mlp(const std::vector<std::size_t>& sizes, std::size_t batch, int warmup, int repeats) {
    Rng rng(0);
    nn::MLP model(sizes, rng);
    nn::Adam adam(model.parameters(), {.lr = 1e-4});
    const Tensor x = randn(Shape{batch, sizes.front()}, rng);
    Tape& tape = Tape::current();
    std::vector<double> step, cpu, forward, backward, update;
    double sink = 0;  // keeps the loss alive so nothing is optimized away
    for (int r = 0; r < warmup + repeats; ++r) {
        const double c0 = process_cpu_ms();
        const auto t0 = clock_type::now();
        adam.zero_grad();
        const Var loss = mean(square(model(Var(x))));
        const auto t1 = clock_type::now();
        tape.backward(loss);
        const auto t2 = clock_type::now();
        adam.step();
        const auto t3 = clock_type::now();
        sink += loss.item();
        tape.clear();
        const auto t4 = clock_type::now();
        const double c4 = process_cpu_ms();
        if (r < warmup) continue;
        step.push_back(ms(t0, t4));
        cpu.push_back(c4 - c0);
        forward.push_back(ms(t0, t1));
        backward.push_back(ms(t1, t2));
        update.push_back(ms(t2, t3));
    }
    if (sink == 0.123456789) fmt::print("");  // never true; uses sink
    return {median(step), median(cpu), median(forward), median(backward), median(update)};
}

void row(const std::string& label, const std::vector<std::size_t>& sizes, std::size_t batch, int warmup, int repeats) {
    const StepTimes t = bench_mlp(sizes, batch, warmup, repeats);
    fmt::print("{:<28} step {:>8.2f} ms (median of {})   cpu {:.2f} ms   forward {:.2f}, backward {:.2f}, adam {:.2f} ms\n",
               label, t.step_ms, repeats, t.cpu_ms, t.forward_ms, t.backward_ms, t.optimizer_ms);
}

}  // namespace

int main() {
    fmt::print("nn training step (gemm kernel {}, {} thread{})\n", kernels::gemm_kernel_name(), num_threads(),
               num_threads() == 1 ? "" : "s");
    row("mlp 2-64-64-4 b512", {2, 64, 64, 4}, 512, 20, 200);
    row("mlp 784-512-512-1568 b256", {784, 512, 512, 1568}, 256, 3, 21);
}
