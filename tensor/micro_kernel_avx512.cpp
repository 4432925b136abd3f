// The AVX-512 micro-kernel (8×24). Compiled with -mavx512f (tensor/meson.build) and run only on CPUs that
// have it (tensor/micro_kernel.cpp). Nothing here may be an inline function shared with other files: a
// merged copy compiled for AVX-512 would crash a CPU without it (see detail::multiply_block).
#include <immintrin.h>

#include "tensor/micro_kernel.hpp"

namespace tapeflow::kernels {
namespace {

// 32 zmm registers: 8×24 uses 24 accumulators (8 rows × 3 vectors of 8 doubles), 3 registers for the row
// of B and the broadcasts of A come straight from memory as FMA operands. Per k step that is 3 vector
// loads + 8 broadcasts for 24 FMAs, the best loads-per-FMA ratio among tiles that fit (14×16 needs
// 16 loads for 28 FMAs) — and 24 independent accumulators comfortably cover the 4-cycle FMA latency on
// 2 FMA pipes (8 needed). mr = 8 also makes one k step of the A sliver exactly one 64-byte cache line.
constexpr std::size_t mr = 8;
constexpr std::size_t nr = 24;

// a: kc steps of mr doubles, b: kc steps of nr doubles (MicroKernel::multiply_block's slivers); only the
// leading rows × cols part of the tile at c is written.
void tile(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc, std::size_t rows,
          std::size_t cols, bool add_to_c) {
    constexpr std::size_t vectors = nr / 8;
    // Start fetching the C tile now: it is only needed after the k loop, and when C has fallen out of
    // cache (large K, so the tile is revisited once per kc slice) this hides the misses behind the FMAs.
    for (std::size_t r = 0; r < rows; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + cols - 1), _MM_HINT_T0);
    }
    __m512d acc[mr][vectors];
    for (std::size_t r = 0; r < mr; ++r)
        for (std::size_t v = 0; v < vectors; ++v) acc[r][v] = _mm512_setzero_pd();

#pragma GCC unroll 4
    for (std::size_t p = 0; p < kc; ++p, a += mr, b += nr) {
        __m512d b_row[vectors];
        for (std::size_t v = 0; v < vectors; ++v) b_row[v] = _mm512_load_pd(b + 8 * v);
        for (std::size_t r = 0; r < mr; ++r) {
            const __m512d a_r = _mm512_set1_pd(a[r]);
            for (std::size_t v = 0; v < vectors; ++v) acc[r][v] = _mm512_fmadd_pd(a_r, b_row[v], acc[r][v]);
        }
    }

    // One mask bit per valid column; lanes outside C are neither loaded nor stored.
    const unsigned col_bits = cols >= nr ? (1u << nr) - 1 : (1u << cols) - 1;
    for (std::size_t r = 0; r < mr; ++r) {
        if (r >= rows) break;
        double* c_row = c + r * ldc;
        for (std::size_t v = 0; v < vectors; ++v) {
            const auto mask = static_cast<__mmask8>(col_bits >> (8 * v));
            __m512d value = acc[r][v];
            if (add_to_c) value = _mm512_add_pd(value, _mm512_maskz_loadu_pd(mask, c_row + 8 * v));
            _mm512_mask_storeu_pd(c_row + 8 * v, mask, value);
        }
    }
}

}  // namespace

const MicroKernel detail::avx512_kernel{"avx512", "avx512 8x24", mr, nr, detail::multiply_block<mr, nr, tile>};

}  // namespace tapeflow::kernels
