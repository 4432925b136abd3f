// OpenBLAS's dgemm at the square sizes of bench_matmul, timed by the same timer (bench/bench_table.hpp),
// so that bench/compare_pytorch.py can put the two rates side by side. OpenBLAS is opened at run time
// (dlopen), which needs only Debian's libopenblas0, no headers; the kernel OpenBLAS picked for this CPU
// (openblas_get_corename) is printed in every row, since its rate depends on it: OPENBLAS_CORETYPE in
// the environment forces an older one.
//
// Usage: bench_openblas [--no-header] N...   (rows for 1 and 2 threads at each N×N·N×N)
#include <dlfcn.h>

#include <cstddef>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/bench_table.hpp"

namespace {

// CBLAS's row-major, no-transpose constants (cblas.h: CblasRowMajor = 101, CblasNoTrans = 111).
constexpr int row_major = 101;
constexpr int no_trans = 111;
using Dgemm = void (*)(int order, int ta, int tb, int M, int N, int K, double alpha, const double* A, int lda,
                       const double* B, int ldb, double beta, double* C, int ldc);
using SetThreads = void (*)(int);
using CoreName = char* (*)();

template <class F>
F symbol(void* library, const char* name) {
    void* s = dlsym(library, name);
    if (!s) throw std::runtime_error(fmt::format("bench_openblas: libopenblas.so.0 has no symbol {}", name));
    return reinterpret_cast<F>(s);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) != "--no-header") sizes.push_back(std::atoi(argv[i]));
    void* library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fmt::print(stderr, "bench_openblas: cannot open libopenblas.so.0 ({}); on Debian: apt-get install libopenblas0\n",
                   dlerror());
        return 1;
    }
    try {
        const auto dgemm = symbol<Dgemm>(library, "cblas_dgemm");
        const auto set_threads = symbol<SetThreads>(library, "openblas_set_num_threads");
        const std::string kernel = symbol<CoreName>(library, "openblas_get_corename")();
        if (tapeflow::bench::wants_header(argc, argv)) tapeflow::bench::print_header();
        std::mt19937_64 rng(42);
        std::uniform_real_distribution<double> uniform(-1.0, 1.0);
        for (const int n : sizes) {
            const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
            std::vector<double> A(count), B(count), C(count);
            for (double& v : A) v = uniform(rng);
            for (double& v : B) v = uniform(rng);
            for (int threads = 1; threads <= 2; ++threads) {
                set_threads(threads);
                const auto t = tapeflow::bench::median_seconds_per_call([&] {
                    dgemm(row_major, no_trans, no_trans, n, n, n, 1.0, A.data(), n, B.data(), n, 0.0, C.data(), n);
                });
                const double flops = 2.0 * static_cast<double>(count) * n;
                tapeflow::bench::print_row("openblas",
                                           fmt::format("{0}×{0}·{0}×{0}, {1} thread{2}", n, threads, threads > 1 ? "s" : ""),
                                           flops / t.wall * 1e-9, 1, "GFLOP/s",
                                           fmt::format("per cpu-second {:.1f}; kernel {}", flops / t.cpu * 1e-9, kernel));
            }
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
}
