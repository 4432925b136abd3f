// The portable micro-kernel (4×8): plain C++, compiled for the library's baseline instruction set, so it
// runs wherever the library does.
#include "tensor/micro_kernel.hpp"

namespace tapeflow::kernels {
namespace {

// A 4×8 tile of plain doubles. The compiler keeps it in registers and vectorises the inner loop with
// whatever vector width the baseline has (two doubles with SSE2, four with x86-64-v3's AVX2).
constexpr std::size_t mr = 4;
constexpr std::size_t nr = 8;

// a: kc steps of mr doubles, b: kc steps of nr doubles (MicroKernel::multiply_block's slivers); only the
// leading rows × cols part of the tile at c is written.
void tile(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc, std::size_t rows,
          std::size_t cols, bool add_to_c) {
    double acc[mr][nr] = {};
    for (std::size_t p = 0; p < kc; ++p, a += mr, b += nr)
        for (std::size_t r = 0; r < mr; ++r)
            for (std::size_t j = 0; j < nr; ++j) acc[r][j] += a[r] * b[j];

    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) c[r * ldc + j] = add_to_c ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

}  // namespace

const MicroKernel detail::portable_kernel{"portable", "portable 4x8", mr, nr, detail::multiply_block<mr, nr, tile>};

}  // namespace tapeflow::kernels
