// Tape overhead: the cost of recording one tiny op and running its backward rule, measured on a
// long chain of scalar adds and muls where the arithmetic itself is negligible.
#include <algorithm>
#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"

using namespace tapeflow;

namespace {

// ns per op for forward + backward of a chain of `ops` scalar ops.
double chain_ns_per_op(std::size_t ops) {
    Tape& tape = Tape::current();
    Parameter a(Tensor::scalar(0.5));
    Parameter b(Tensor::scalar(1.0001));
    const auto start = std::chrono::steady_clock::now();
    Var x = a.var();
    const Var c = b.var();
    for (std::size_t i = 0; i < ops; i += 2) {
        x = x * c;  // two recorded ops per iteration
        x = x + c;
    }
    tape.backward(x);
    const auto stop = std::chrono::steady_clock::now();
    tape.clear();
    return std::chrono::duration<double, std::nano>(stop - start).count() / static_cast<double>(ops);
}

}  // namespace

int main() {
    constexpr std::size_t ops = 200'000;
    constexpr int repeats = 15;
    chain_ns_per_op(ops);  // warm-up: reserves the tape's capacity
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) samples.push_back(chain_ns_per_op(ops));
    std::sort(samples.begin(), samples.end());
    fmt::print("{:<44} {:>10.1f} ns/op   (median of {}, chain of {} scalar ops, forward + backward; target ≤ 100)\n",
               "tape overhead, scalar add/mul", samples[repeats / 2], repeats, ops);
}
