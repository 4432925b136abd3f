// Tape overhead: the cost of recording one tiny op and running its backward rule, measured on a
// long chain of scalar adds and muls where the arithmetic itself is negligible. Target ≤ 100 ns per op
// for forward + backward.
#include <cstddef>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
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
}
