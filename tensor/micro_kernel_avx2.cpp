// The AVX2 + FMA micro-kernel (6×8). Compiled with -mavx2 -mfma (tensor/meson.build) and run only on CPUs
// that have both (tensor/micro_kernel.cpp). Nothing here may be an inline function shared with other
// files (see detail::multiply_block).
#include <immintrin.h>

#include "tensor/micro_kernel.hpp"

namespace tapeflow::kernels {
namespace {

// 16 ymm registers: 6×8 uses 12 accumulators (6 rows × 2 vectors of 4 doubles) + 2 for the row of B + 1
// for the broadcast of A = 15. This is the BLIS Haswell shape; 12 accumulators cover the FMA latency.
constexpr std::size_t mr = 6;
constexpr std::size_t nr = 8;

// a: kc steps of mr doubles, b: kc steps of nr doubles (MicroKernel::multiply_block's slivers); only the
// leading rows × cols part of the tile at c is written.
void tile(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc, std::size_t rows,
          std::size_t cols, bool add_to_c) {
    constexpr std::size_t vectors = nr / 4;
    __m256d acc[mr][vectors];
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t v = 0; v < vectors; ++v) acc[r][v] = _mm256_setzero_pd();

#pragma GCC unroll 4
    for (std::size_t p = 0; p < kc; ++p, a += mr, b += nr) {
        __m256d b_row[vectors];
        for (std::size_t v = 0; v < vectors; ++v) b_row[v] = _mm256_load_pd(b + 4 * v);
        for (std::size_t r = 0; r < mr; ++r) {
            const __m256d a_r = _mm256_broadcast_sd(a + r);
            for (std::size_t v = 0; v < vectors; ++v) acc[r][v] = _mm256_fmadd_pd(a_r, b_row[v], acc[r][v]);
        }
    }

    // AVX2 masks are vectors: lane l of vector v is valid when 4v + l < cols.
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    for (std::size_t r = 0; r < mr; ++r) {
        if (r >= rows) break;
        double* c_row = c + r * ldc;
        for (std::size_t v = 0; v < vectors; ++v) {
            const auto valid = static_cast<long long>(cols) - static_cast<long long>(4 * v);
            const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(valid), lane);
            __m256d value = acc[r][v];
            if (add_to_c) value = _mm256_add_pd(value, _mm256_maskload_pd(c_row + 4 * v, mask));
            _mm256_maskstore_pd(c_row + 4 * v, mask, value);
        }
    }
}

}  // namespace

const MicroKernel detail::avx2_kernel{"avx2", "avx2 6x8", mr, nr, detail::multiply_block<mr, nr, tile>};

}  // namespace tapeflow::kernels
