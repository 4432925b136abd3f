// Tape overhead: the cost of recording one tiny op and running its backward rule, measured on a
// long chain of scalar adds and muls where the arithmetic itself is negligible. Target ≤ 100 ns per op
// for forward + backward.
#include <cstddef>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/functional.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "bench/bench_table.hpp"

using namespace tapeflow;

namespace {

struct ChainTimes {
    double forward_ns;   // per op
    double backward_ns;  // per op
    double cpu_ns;       // process CPU time per op, forward + backward
};

// Forward + backward of a chain of `ops` scalar ops, per op.
ChainTimes chain(std::size_t ops) {
    Tape& tape = Tape::current();
    Parameter a(Tensor::scalar(0.5));
    Parameter b(Tensor::scalar(1.0001));
    const double cpu_start = bench::process_cpu_seconds();
    const auto start = bench::clock_type::now();
    Var x = a.var();
    const Var c = b.var();
    for (std::size_t i = 0; i < ops; i += 2) {
        x = x * c;  // two recorded ops per iteration
        x = x + c;
    }
    const auto recorded = bench::clock_type::now();
    tape.backward(x);
    const auto stop = bench::clock_type::now();
    const double cpu_stop = bench::process_cpu_seconds();
    tape.clear();
    const double n = static_cast<double>(ops);
    return {bench::seconds_between(start, recorded) * 1e9 / n, bench::seconds_between(recorded, stop) * 1e9 / n,
            (cpu_stop - cpu_start) * 1e9 / n};
}

// CPU µs of one Hessian-vector product of f(x) = Σ tanh(W·x)² (x ∈ ℝ¹²⁸, W 128×128), recording f
// included, by the given mode (docs/theory.md §11).
double hvp_cpu_us(HvpMode mode, int repeats) {
    Rng rng(1);
    const Tensor w = randn(Shape{128, 128}, rng) * 0.1;
    const Tensor x0 = randn(Shape{128, 1}, rng);
    const Tensor v = randn(Shape{128, 1}, rng);
    const auto f = [&w](const Var& x) { return sum(square(tanh(matmul(Var(w), x)))); };
    std::vector<double> samples;
    Tape& tape = Tape::current();
    for (int r = 0; r < repeats; ++r) {
        const double start = bench::process_cpu_seconds();
        const Var x = tape.variable(x0);
        const Var hv = hvp(f, x, v, mode);
        samples.push_back((bench::process_cpu_seconds() - start) * 1e6);
        tape.clear();
        (void)hv;
    }
    return bench::median(samples);
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::wants_header(argc, argv)) bench::print_header();
    constexpr std::size_t ops = 200'000;
    constexpr int repeats = 15;
    chain(ops);  // warm-up: reserves the tape's capacity and fills the storage cache
    std::vector<double> total, forward, backward, cpu;
    for (int r = 0; r < repeats; ++r) {
        const ChainTimes t = chain(ops);
        total.push_back(t.forward_ns + t.backward_ns);
        forward.push_back(t.forward_ns);
        backward.push_back(t.backward_ns);
        cpu.push_back(t.cpu_ns);
    }
    bench::print_row("tape", "scalar add/mul chain, forward + backward", bench::median(total), 1, "ns/op",
                     fmt::format("cpu {:.1f}; forward {:.1f} + backward {:.1f}; chain of {} ops; target ≤ 100",
                                 bench::median(cpu), bench::median(forward), bench::median(backward), ops));
    const double rev = hvp_cpu_us(HvpMode::reverse_over_reverse, 200);
    const double fwd = hvp_cpu_us(HvpMode::forward_over_reverse, 200);
    bench::print_row("tape", "hvp reverse-over-reverse (default), n=128", rev, 1, "us cpu",
                     fmt::format("forward-over-reverse {:.1f} us cpu ({:.2f}x); f = sum tanh(Wx)^2", fwd, fwd / rev));
}
