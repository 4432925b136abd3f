// The gemm micro-kernels, one per instruction set, and the choice of the one that runs.
//
// The library is built for a baseline instruction set (meson option cpu_baseline), so it runs on any CPU
// of that generation. Only the micro-kernel — the innermost loop of gemm, where nearly all of its time
// goes — and the register panels of gemm's direct path for skinny products (tensor/gemm_panels.hpp) are
// compiled three times, each in its own file with its own target flags:
//   avx512    8×24 tile, AVX-512F           (tensor/micro_kernel_avx512.cpp)
//   avx2      6×8 tile, AVX2 + FMA          (tensor/micro_kernel_avx2.cpp)
//   portable  4×8 tile, the baseline ISA    (tensor/micro_kernel_portable.cpp)
// The first gemm picks the fastest one this CPU supports, unless the environment variable
// TAPEFLOW_KERNEL names one (avx512, avx2 or portable); set_kernel changes it later. Every path computes
// the same products to within rounding (tests/tensor/gemm_test.cpp runs each one the CPU supports).
// Internal header: not installed.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace tapeflow::kernels {

struct MicroKernel {
    const char* name;   // what TAPEFLOW_KERNEL and set_kernel take: "avx512", "avx2", "portable"
    const char* label;  // name and tile shape, for benchmark output: "avx512 8x24"
    std::size_t mr;     // rows of a micro-tile of C
    std::size_t nr;     // columns of a micro-tile of C
    // C block (mc×nc) = packed A block · packed B block (+ C block if add_to_c), one mr×nr tile at a time.
    //   packed_a: mc rows of op(A) as slivers of mr rows, each kc columns of mr doubles
    //             (sliver s, step p, row r at packed_a[s·mr·kc + p·mr + r]), zero-padded to whole slivers
    //   packed_b: nc columns of op(B) as slivers of nr columns, each kc rows of nr doubles
    //             (sliver s, step p, column j at packed_b[s·nr·kc + p·nr + j]), zero-padded likewise
    //   both 64-byte aligned; only the mc×nc part of C is read (if add_to_c) and written.
    void (*multiply_block)(std::size_t mc, std::size_t nc, std::size_t kc, const double* packed_a,
                           const double* packed_b, double* c, std::size_t ldc, bool add_to_c);
    // gemm's direct path for skinny products, compiled with the kernel's instruction set too
    // (tensor/gemm_panels.hpp). Row form, rows ≤ 3: C (rows×N) = op(A)·B (+ C), op(A)(i, k) =
    // a[i·a_row_step + k·a_col_step], B stored K×N with leading dimension ldb.
    void (*direct_rows)(std::size_t rows, const double* a, std::size_t a_row_step, std::size_t a_col_step,
                        const double* b, std::size_t ldb, std::size_t N, std::size_t K, double* c, std::size_t ldc,
                        bool accumulate);
    // Column form, cols ≤ 4: C (M×cols) = op(A)·op(B) (+ C), op(A) stored transposed (op(A)(i, k) =
    // a[k·lda + i]), op(B)(k, j) = b[k·b_row_step + j·b_col_step].
    void (*direct_columns)(std::size_t cols, const double* a, std::size_t lda, const double* b,
                           std::size_t b_row_step, std::size_t b_col_step, std::size_t M, std::size_t K, double* c,
                           std::size_t ldc, bool accumulate);
};

// The kernel gemm uses now. The first call chooses it: TAPEFLOW_KERNEL if set, otherwise the fastest
// kernel this CPU supports. Throws std::invalid_argument if TAPEFLOW_KERNEL names an unknown kernel or
// one this CPU cannot run.
const MicroKernel& active_kernel();
// active_kernel().label, e.g. "avx512 8x24".
const char* active_kernel_name();

// Makes gemm use the kernel called `name` ("avx512", "avx2", "portable"), or with "auto" the one chosen
// at start-up. Throws std::invalid_argument naming `name` if it is unknown or this CPU cannot run it.
// Meant for tests and benchmarks: calls of gemm already running keep the kernel they started with.
void set_kernel(std::string_view name);

// Names of the kernels this build and CPU can run, fastest first (always ends with "portable").
std::vector<std::string_view> supported_kernels();

namespace detail {

// The kernel called `name`, or std::invalid_argument whose message starts with `source` (the setting it
// came from, e.g. "TAPEFLOW_KERNEL") and names the value. Shared by TAPEFLOW_KERNEL and set_kernel.
const MicroKernel& kernel_named(std::string_view name, std::string_view source);

// The per-ISA kernels. Each exists only if its file is part of the build (tensor/meson.build).
extern const MicroKernel avx512_kernel;
extern const MicroKernel avx2_kernel;
extern const MicroKernel portable_kernel;

// The sweep over the mr×nr tiles of one block, shared by the per-ISA files. Each instantiates it with
// its own tile function, which has internal linkage (anonymous namespace), so each instantiation is a
// distinct internal function compiled with that file's instruction set — never an inline definition the
// linker could merge with another file's copy and so run AVX-512 code on a CPU without it.
template <std::size_t mr, std::size_t nr,
          void (*tile)(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc,
                       std::size_t rows, std::size_t cols, bool add_to_c)>
void multiply_block(std::size_t mc, std::size_t nc, std::size_t kc, const double* packed_a,
                    const double* packed_b, double* c, std::size_t ldc, bool add_to_c) {
    for (std::size_t ir = 0; ir < mc; ir += mr) {
        const std::size_t rows = mc - ir < mr ? mc - ir : mr;
        for (std::size_t jr = 0; jr < nc; jr += nr)
            tile(kc, packed_a + ir * kc, packed_b + jr * kc, c + ir * ldc + jr, ldc, rows,
                 nc - jr < nr ? nc - jr : nr, add_to_c);
    }
}

}  // namespace detail
}  // namespace tapeflow::kernels
