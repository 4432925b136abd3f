// Throughput of tapeflow::kernels::gemm in GFLOP/s (2·M·N·K flops per call), medians over repeats
// (bench/bench_table.hpp).
//
// Rows: square sizes with 1 and 2 threads; the shapes a coupling-layer flow actually produces (forward
// op(A)·op(B), and the two backward products dA = dC·Bᵀ and dB = Aᵀ·dC), one thread, with the two-thread
// rate in the details; the reference triple loop at two sizes for scale. bench/compare_pytorch.py puts
// OpenBLAS's dgemm (through torch) beside the square rows.
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_table.hpp"
#include "tensor/gemm.hpp"
#include "tensor/micro_kernel.hpp"

namespace {

using tapeflow::kernels::Transpose;

struct Product {
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

double gflops(std::size_t M, std::size_t N, std::size_t K, double seconds) {
    return 2.0 * static_cast<double>(M * N * K) / seconds * 1e-9;
}

// GFLOP/s of gemm on random operands of the product's shape, with 1 and with 2 threads.
struct Rates {
    double wall[2];  // GFLOP/s by wall-clock time, 1 and 2 threads
    double cpu1;     // GFLOP/s per CPU-second with 1 thread: what an unloaded core would do
};

Rates measure(const Product& p, std::mt19937_64& rng) {
    // Stored shapes: A is M×K or (transposed) K×M, B is K×N or N×K; leading dimension = stored width.
    const std::size_t lda = p.ta == Transpose::no ? p.K : p.M;
    const std::size_t ldb = p.tb == Transpose::no ? p.N : p.K;
    const std::vector<double> A = random_matrix(p.M * p.K, rng);
    const std::vector<double> B = random_matrix(p.K * p.N, rng);
    std::vector<double> C(p.M * p.N);
    Rates rates{};
    for (int threads = 1; threads <= 2; ++threads) {
        const tapeflow::bench::Timing t = tapeflow::bench::median_seconds_per_call([&] {
            tapeflow::kernels::gemm(p.ta, p.tb, p.M, p.N, p.K, A.data(), lda, B.data(), ldb, C.data(), p.N,
                                    false, threads);
        });
        rates.wall[threads - 1] = gflops(p.M, p.N, p.K, t.wall);
        if (threads == 1) rates.cpu1 = gflops(p.M, p.N, p.K, t.cpu);
    }
    return rates;
}

}  // namespace

int main(int argc, char** argv) {
    using tapeflow::bench::print_row;
    if (tapeflow::bench::wants_header(argc, argv)) tapeflow::bench::print_header();
    std::mt19937_64 rng(42);
    const std::string kernel = fmt::format("kernel {}", tapeflow::kernels::active_kernel_name());

    constexpr Transpose no = Transpose::no;
    constexpr Transpose yes = Transpose::yes;
    for (std::size_t n : {64, 128, 256, 512, 1024}) {
        const Rates r = measure({"", no, no, n, n, n}, rng);
        print_row("matmul", fmt::format("{0}×{0}·{0}×{0}, 1 thread", n), r.wall[0], 1, "GFLOP/s",
                  fmt::format("per cpu-second {:.1f}; {}", r.cpu1, kernel));
        print_row("matmul", fmt::format("{0}×{0}·{0}×{0}, 2 threads", n), r.wall[1], 1, "GFLOP/s",
                  fmt::format("×{:.2f} over 1 thread", r.wall[1] / r.wall[0]));
    }
    // A coupling layer's linear map: activations (batch × in) · weights (in × out). Backward needs
    // dX = dY · Wᵀ (tb = yes) and dW = Xᵀ · dY (ta = yes).
    const struct {
        std::size_t batch, in, out;
    } layers[] = {{512, 64, 64}, {256, 784, 512}, {256, 512, 1568},
                  // a 2-D toy flow's first and last layers: skinny products that take the direct path
                  {512, 2, 64}, {512, 64, 2}};
    for (const auto& l : layers) {
        const std::string name = fmt::format("{}×{}·{}×{}", l.batch, l.in, l.in, l.out);
        const Product products[] = {{name + " fwd", no, no, l.batch, l.out, l.in},
                                    {name + " dX=dY·Wᵀ", no, yes, l.batch, l.in, l.out},
                                    {name + " dW=Xᵀ·dY", yes, no, l.in, l.out, l.batch}};
        for (const Product& p : products) {
            const Rates r = measure(p, rng);
            print_row("matmul", p.label + ", 1 thread", r.wall[0], 1, "GFLOP/s",
                      fmt::format("per cpu-second {:.1f}; 2 threads: {:.1f}", r.cpu1, r.wall[1]));
        }
    }
    for (std::size_t n : {64, 256}) {
        const std::vector<double> A = random_matrix(n * n, rng);
        const std::vector<double> B = random_matrix(n * n, rng);
        std::vector<double> C(n * n);
        const tapeflow::bench::Timing t = tapeflow::bench::median_seconds_per_call([&] {
            tapeflow::kernels::gemm_reference(no, no, n, n, n, A.data(), n, B.data(), n, C.data(), n, false);
        });
        print_row("matmul", fmt::format("{0}×{0}·{0}×{0}, reference triple loop", n), gflops(n, n, n, t.wall), 1,
                  "GFLOP/s", "gemm_reference, for scale");
    }
}
