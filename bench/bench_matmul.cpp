// Throughput of tapeflow::kernels::gemm in GFLOP/s (2·M·N·K flops per call).
//
// Each row is the median over `repeats` timings; one timing runs the call back to back for at least
// `min_repeat_time` and divides by the number of calls, so short calls are not dominated by
// clock resolution and one noisy timing cannot move the result. Build with -O3 -march=native.
//
// Rows: square sizes with 1 and 2 threads; the shapes a coupling-layer flow actually produces (forward
// op(A)·op(B), and the two backward products dA = dC·Bᵀ and dB = Aᵀ·dC); the reference triple loop at two
// sizes for scale.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "tensor/gemm.hpp"

namespace {

using tapeflow::kernels::Transpose;
using clock_type = std::chrono::steady_clock;

constexpr int repeats = 5;
constexpr std::chrono::milliseconds min_repeat_time{50};

struct shape {
    std::string label;
    Transpose ta;
    Transpose tb;
    std::size_t M, N, K;
};

std::vector<double> random_matrix(std::size_t count, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    std::vector<double> values(count);
    for (double& v : values) v = uniform(rng);
    return values;
}

// Median GFLOP/s of `call` for a product of the given size. The number of calls per timing is fixed
// from a calibration run, so the clock is read twice per timing rather than once per call.
template <class Call>
double median_gflops(std::size_t M, std::size_t N, std::size_t K, Call call) {
    auto time_calls = [&](std::size_t calls) {
        const auto start = clock_type::now();
        for (std::size_t c = 0; c < calls; ++c) call();
        return std::chrono::duration<double>(clock_type::now() - start).count();
    };
    time_calls(1);  // warm up: page in the operands, grow the packing buffers, start the pool worker
    std::size_t calls = 1;
    const double target = std::chrono::duration<double>(min_repeat_time).count();
    while (time_calls(calls) < target / 4) calls *= 2;
    calls *= 4;  // now each timing runs ≥ min_repeat_time

    std::vector<double> rates;
    for (int r = 0; r < repeats; ++r) {
        const double seconds = time_calls(calls) / static_cast<double>(calls);
        rates.push_back(2.0 * static_cast<double>(M * N * K) / seconds * 1e-9);
    }
    std::nth_element(rates.begin(), rates.begin() + repeats / 2, rates.end());
    return rates[repeats / 2];
}

void bench_row(const shape& s, std::mt19937_64& rng) {
    // Stored shapes: A is M×K or (transposed) K×M, B is K×N or N×K; leading dimension = stored width.
    const std::size_t lda = s.ta == Transpose::no ? s.K : s.M;
    const std::size_t ldb = s.tb == Transpose::no ? s.N : s.K;
    const std::vector<double> A = random_matrix(s.M * s.K, rng);
    const std::vector<double> B = random_matrix(s.K * s.N, rng);
    std::vector<double> C(s.M * s.N);

    double rate[2];
    for (int threads = 1; threads <= 2; ++threads)
        rate[threads - 1] = median_gflops(s.M, s.N, s.K, [&] {
            tapeflow::kernels::gemm(s.ta, s.tb, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, C.data(), s.N,
                                    false, threads);
        });
    fmt::print("{:<34} {:>5} {:>5} {:>5} {:>10.1f} {:>10.1f}\n", s.label, s.M, s.N, s.K, rate[0], rate[1]);
}

void bench_reference(std::size_t n, std::mt19937_64& rng) {
    const std::vector<double> A = random_matrix(n * n, rng);
    const std::vector<double> B = random_matrix(n * n, rng);
    std::vector<double> C(n * n);
    const double rate = median_gflops(n, n, n, [&] {
        tapeflow::kernels::gemm_reference(Transpose::no, Transpose::no, n, n, n, A.data(), n, B.data(), n,
                                          C.data(), n, false);
    });
    fmt::print("{:<34} {:>5} {:>5} {:>5} {:>10.1f} {:>10}\n", "reference triple loop", n, n, n, rate, "-");
}

}  // namespace

int main() {
    std::mt19937_64 rng(42);
    fmt::print("gemm micro-kernel: {}; median of {} repeats of >= {} ms; GFLOP/s = 2MNK / time\n\n",
               tapeflow::kernels::gemm_kernel_name(), repeats, min_repeat_time.count());
    fmt::print("{:<34} {:>5} {:>5} {:>5} {:>10} {:>10}\n", "product", "M", "N", "K", "1 thread", "2 threads");

    constexpr Transpose no = Transpose::no;
    constexpr Transpose yes = Transpose::yes;
    std::vector<shape> shapes;
    for (std::size_t n : {64, 128, 256, 512, 1024}) shapes.push_back({"square A·B", no, no, n, n, n});
    // A coupling layer's linear map: activations (batch × in) · weights (in × out). Backward needs
    // dX = dY · Wᵀ (tb = yes) and dW = Xᵀ · dY (ta = yes).
    const struct {
        std::size_t batch, in, out;
    } layers[] = {{512, 64, 64}, {256, 784, 512}, {256, 512, 1568},
                  // a 2-D toy flow's first and last layers: skinny products that take the direct path
                  {512, 2, 64}, {512, 64, 2}};
    for (const auto& l : layers) {
        const std::string name = fmt::format("({}x{})·({}x{})", l.batch, l.in, l.in, l.out);
        shapes.push_back({name + " fwd", no, no, l.batch, l.out, l.in});
        shapes.push_back({name + " dX=dY·Wᵀ", no, yes, l.batch, l.in, l.out});
        shapes.push_back({name + " dW=Xᵀ·dY", yes, no, l.in, l.out, l.batch});
    }
    for (const shape& s : shapes) bench_row(s, rng);
    for (std::size_t n : {64, 256}) bench_reference(n, rng);
}
