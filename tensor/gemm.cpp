// Double-precision GEMM in the style of GotoBLAS / BLIS.
//
// The fast path has three layers, from the outside in:
//
//   1. Cache blocking. op(A) is cut into mc×kc blocks and op(B) into kc×nc blocks, sized so that the
//      block of B being worked on stays in L2 and one mr-row sliver of A stays in L1 while it sweeps
//      across that block (numbers below, next to the constants).
//   2. Packing. Each block is copied into a contiguous, 64-byte aligned buffer in exactly the order the
//      micro-kernel reads it: A as column-major slivers of mr rows, B as row-major slivers of nr columns.
//      The copy is where transposes are absorbed: op(A) = Aᵀ only changes the order we read A in while
//      packing, so AᵀB and ABᵀ cost the same as AB and no transpose is ever materialised. Edge slivers
//      are zero-padded to full width, so the micro-kernel never needs a short loop.
//   3. The micro-kernel. It keeps an mr×nr tile of C in vector registers and, for each of kc steps, adds
//      the outer product of an mr-column of A and an nr-row of B: nr/w vector loads of B, mr broadcasts
//      of A, mr·nr/w fused multiply-adds (w = doubles per vector). Only at the end does it touch C,
//      through masked stores where the tile hangs over the edge of C.
//
// Small products skip all of this (packing costs O(MK + KN) copies, which only pays when it is reused
// over many columns and rows) and run a direct loop with no allocation.
//
// The micro-kernel comes in three builds, chosen at compile time: AVX-512 (8×24), AVX2+FMA (6×8) and a
// portable loop the compiler vectorises as it can (4×8). All three share the packing and blocking code.
#include "tensor/gemm.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace tapeflow::kernels {
namespace {

// ---------------------------------------------------------------------------------------------------------
// Micro-kernels
//
// Contract shared by all three builds:
//   a: packed sliver of op(A), kc columns of mr doubles (a[p * mr + r] = op(A)(r, p)), 64-byte aligned
//   b: packed sliver of op(B), kc rows of nr doubles    (b[p * nr + j] = op(B)(p, j)), 64-byte aligned
//   c: top-left corner of the C tile; only the leading rows × cols part of the mr×nr tile is written
//   add_to_c: false → C tile = a·b (C is not read), true → C tile += a·b
// ---------------------------------------------------------------------------------------------------------

#if defined(__AVX512F__)

// 32 zmm registers: 8×24 uses 24 accumulators (8 rows × 3 vectors of 8 doubles), 3 registers for the row
// of B and the broadcasts of A come straight from memory as FMA operands. Per k step that is 3 vector
// loads + 8 broadcasts for 24 FMAs, the best loads-per-FMA ratio among tiles that fit (14×16 needs
// 16 loads for 28 FMAs) — and 24 independent accumulators comfortably cover the 4-cycle FMA latency on
// 2 FMA pipes (8 needed). mr = 8 also makes one k step of the A sliver exactly one 64-byte cache line.
constexpr std::size_t mr = 8;
constexpr std::size_t nr = 24;
constexpr const char* kernel_name = "avx512 8x24";

void micro_kernel(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc,
                  std::size_t rows, std::size_t cols, bool add_to_c) {
    constexpr std::size_t vectors = nr / 8;
    // Start fetching the C tile now: it is only needed after the k loop, and when C has fallen out of
    // cache (large K, so the tile is revisited once per kc slice) this hides the misses behind the FMAs.
    for (std::size_t r = 0; r < rows; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + nr - 1), _MM_HINT_T0);
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
    const std::uint32_t col_bits = cols >= nr ? (std::uint32_t{1} << nr) - 1 : (std::uint32_t{1} << cols) - 1;
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

#elif defined(__AVX2__) && defined(__FMA__)

// 16 ymm registers: 6×8 uses 12 accumulators (6 rows × 2 vectors of 4 doubles) + 2 for the row of B + 1
// for the broadcast of A = 15. This is the BLIS Haswell shape; 12 accumulators cover the FMA latency.
constexpr std::size_t mr = 6;
constexpr std::size_t nr = 8;
constexpr const char* kernel_name = "avx2 6x8";

void micro_kernel(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc,
                  std::size_t rows, std::size_t cols, bool add_to_c) {
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

#else

// Portable build: a 4×8 tile of plain doubles. The compiler keeps it in registers and vectorises the
// inner loop with whatever vector width the target has (two doubles with baseline SSE2).
constexpr std::size_t mr = 4;
constexpr std::size_t nr = 8;
constexpr const char* kernel_name = "portable 4x8";

void micro_kernel(std::size_t kc, const double* a, const double* b, double* c, std::size_t ldc,
                  std::size_t rows, std::size_t cols, bool add_to_c) {
    double acc[mr][nr] = {};
    for (std::size_t p = 0; p < kc; ++p, a += mr, b += nr)
        for (std::size_t r = 0; r < mr; ++r)
            for (std::size_t j = 0; j < nr; ++j) acc[r][j] += a[r] * b[j];

    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < cols; ++j) c[r * ldc + j] = add_to_c ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

#endif

// ---------------------------------------------------------------------------------------------------------
// Cache blocking
//
// Loop nest (outermost first) and where each operand lives while it is reused:
//   for ic in M by mc:  for pc in K by kc:  pack A block (mc×kc)       → streamed from L3 / memory
//     for jc in N by nc:  pack B block (kc×nc)                         → stays in L2 (per core, 2 MiB)
//       for ir in mc by mr:  A sliver (mr×kc)                          → stays in L1 (48 KiB)
//         for jr in nc by nr:  micro-kernel(A sliver, B sliver)        → B sliver streams in from L2
//
// kc = 256: the A sliver is 8·256·8 B = 16 KiB, a third of L1, so it survives the B slivers streaming past
//   it; and each micro-kernel call runs 256 k steps (~3000 cycles of FMAs with mr×nr = 8×24), which
//   amortises the load/store of its C tile. Larger kc pushed the A sliver out of L1 in measurements.
// nc = 480 (a multiple of nr = 24 and of 8): the B block is 256·480·8 B = 960 KiB, half of L2, leaving
//   room for the A slivers and C tiles passing through L2 without evicting B.
// mc = 1024: the A block is only walked once per B block, one L1-sized sliver at a time, so it just
//   needs to fit comfortably in L3 (256·1024·8 B = 2 MiB of 32 MiB). A large mc means op(B) is packed
//   only once for M ≤ 1024 — every repack of B is pure overhead.
// The same numbers suit the AVX2 and portable kernels: their slivers are smaller, so they fit more easily.
// ---------------------------------------------------------------------------------------------------------

constexpr std::size_t kc_block = 256;
constexpr std::size_t nc_block = (480 / nr) * nr;
constexpr std::size_t mc_block = (1024 / mr) * mr;

static_assert(nc_block % nr == 0 && mc_block % mr == 0, "blocks must hold whole micro-tiles");

// ---------------------------------------------------------------------------------------------------------
// Operands
// ---------------------------------------------------------------------------------------------------------

// op(X) as seen by the algorithm: element (row, col) of op(X), whichever way X is stored.
struct matrix_operand {
    const double* data;
    std::size_t ld;
    bool transposed;  // op(X) = Xᵀ: element (row, col) is stored at data[col * ld + row]

    double at(std::size_t row, std::size_t col) const {
        return transposed ? data[col * ld + row] : data[row * ld + col];
    }
    // Distance in memory between op(X)(row, col) and op(X)(row, col + 1), and (row + 1, col).
    std::size_t col_step() const { return transposed ? ld : 1; }
    std::size_t row_step() const { return transposed ? 1 : ld; }
    // op(X) with its top-left corner moved to (row, col).
    matrix_operand offset(std::size_t row, std::size_t col) const {
        return {data + row * row_step() + col * col_step(), ld, transposed};
    }
    // op(X)ᵀ: the same storage read the other way round.
    matrix_operand flipped() const { return {data, ld, !transposed}; }
};

// ---------------------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------------------

// Copies rows [row0, row0 + rows) × columns [col0, col0 + depth) of op(X) into slivers of `width` rows,
// each stored column by column: sliver s holds dst[s·width·depth + p·width + r] = op(X)(row0 + s·width + r,
// col0 + p). Rows past the end are zero-filled, so every sliver is full width.
//
// op(A)'s block is packed directly (width = mr). op(B)'s block is packed as op(B)ᵀ with width = nr: a
// column-major sliver of nr rows of op(B)ᵀ is a row-major sliver of nr columns of op(B), which is what the
// micro-kernel wants. The loop order follows the storage so that reads from X are always sequential.
void pack_slivers(const matrix_operand& x, std::size_t row0, std::size_t rows, std::size_t col0,
                  std::size_t depth, std::size_t width, double* dst) {
    for (std::size_t s = 0; s < rows; s += width, dst += width * depth) {
        const std::size_t live = std::min(width, rows - s);
        const matrix_operand sliver = x.offset(row0 + s, col0);
        if (sliver.transposed) {
            // The `width` values of one packed column are contiguous in X.
            for (std::size_t p = 0; p < depth; ++p) {
                const double* src = sliver.data + p * sliver.ld;
                double* out = dst + p * width;
                for (std::size_t r = 0; r < live; ++r) out[r] = src[r];
                for (std::size_t r = live; r < width; ++r) out[r] = 0.0;
            }
        } else {
            // Each row of the sliver is contiguous in X: read it straight, write with stride `width`.
            for (std::size_t r = 0; r < live; ++r) {
                const double* src = sliver.data + r * sliver.ld;
                for (std::size_t p = 0; p < depth; ++p) dst[p * width + r] = src[p];
            }
            for (std::size_t r = live; r < width; ++r)
                for (std::size_t p = 0; p < depth; ++p) dst[p * width + r] = 0.0;
        }
    }
}

// A growable, 64-byte aligned array of doubles (one cache line; also the alignment aligned zmm loads need).
class aligned_buffer {
public:
    double* reserve(std::size_t count) {
        if (count > capacity_) {
            const std::size_t bytes = (count * sizeof(double) + alignment - 1) / alignment * alignment;
            void* raw = std::aligned_alloc(alignment, bytes);
            if (raw == nullptr) throw std::bad_alloc();
            data_.reset(static_cast<double*>(raw));
            capacity_ = count;
        }
        return data_.get();
    }

private:
    static constexpr std::size_t alignment = 64;
    struct free_deleter {
        void operator()(double* p) const { std::free(p); }
    };
    std::unique_ptr<double, free_deleter> data_;
    std::size_t capacity_ = 0;
};

// One pair of packing buffers per thread: grown on the first large call, then reused, so the steady state
// allocates nothing. Thread-local because the pool worker packs its own blocks concurrently.
struct packing_buffers {
    aligned_buffer a;
    aligned_buffer b;
};
thread_local packing_buffers buffers;

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The block size actually used for a dimension of `extent`: as many blocks as `limit` requires, but of
// equal size (rounded up to whole tiles). K = 1568 with kc = 256 gives 7 slices of 224 rather than six of
// 256 and a seventh of 32, whose micro-kernel calls would be too short to pay for their C load/store.
std::size_t balanced_block(std::size_t extent, std::size_t limit, std::size_t tile) {
    const std::size_t blocks = (extent + limit - 1) / limit;
    return std::min(limit, round_up((extent + blocks - 1) / blocks, tile));
}

// ---------------------------------------------------------------------------------------------------------
// Blocked path: C (M×N) = op(A)·op(B) (+ C), with M, N, K > 0.
// ---------------------------------------------------------------------------------------------------------

void gemm_blocked(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                  std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    const std::size_t mc_step = balanced_block(M, mc_block, mr);
    const std::size_t nc_step = balanced_block(N, nc_block, nr);
    const std::size_t kc_step = balanced_block(K, kc_block, 1);
    double* packed_a = buffers.a.reserve(round_up(mc_step, mr) * kc_step);
    double* packed_b = buffers.b.reserve(round_up(nc_step, nr) * kc_step);
    const matrix_operand b_t = b.flipped();

    for (std::size_t ic = 0; ic < M; ic += mc_step) {
        const std::size_t mc = std::min(mc_step, M - ic);
        for (std::size_t pc = 0; pc < K; pc += kc_step) {
            const std::size_t kc = std::min(kc_step, K - pc);
            // The first slice of K decides between overwrite and accumulate; later slices add to it.
            const bool add_to_c = accumulate || pc > 0;
            pack_slivers(a, ic, mc, pc, kc, mr, packed_a);

            for (std::size_t jc = 0; jc < N; jc += nc_step) {
                const std::size_t nc = std::min(nc_step, N - jc);
                pack_slivers(b_t, jc, nc, pc, kc, nr, packed_b);

                for (std::size_t ir = 0; ir < mc; ir += mr) {
                    const double* a_sliver = packed_a + ir * kc;
                    double* c_row = C + (ic + ir) * ldc + jc;
                    const std::size_t rows = std::min(mr, mc - ir);
                    for (std::size_t jr = 0; jr < nc; jr += nr)
                        micro_kernel(kc, a_sliver, packed_b + jr * kc, c_row + jr, ldc, rows,
                                     std::min(nr, nc - jr), add_to_c);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Direct path for small products: no packing, no allocation.
// ---------------------------------------------------------------------------------------------------------

// Σ x[k·incx]·y[k·incy] with four partial sums, so consecutive adds do not wait on each other (one running
// sum would be limited by the 4-cycle add latency).
double strided_dot(const double* x, std::size_t incx, const double* y, std::size_t incy, std::size_t n) {
    double sum[4] = {};
    std::size_t k = 0;
    for (; k + 4 <= n; k += 4)
        for (std::size_t u = 0; u < 4; ++u) sum[u] += x[(k + u) * incx] * y[(k + u) * incy];
    for (; k < n; ++k) sum[0] += x[k * incx] * y[k * incy];
    return (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

void gemm_direct(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                 std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    for (std::size_t i = 0; i < M; ++i) {
        double* c_row = C + i * ldc;
        if (!b.transposed && N >= 4) {
            // Rows of op(B) are contiguous: c_i += a_ik · b_k, one vectorised row update per k.
            if (!accumulate) std::fill(c_row, c_row + N, 0.0);
            for (std::size_t k = 0; k < K; ++k) {
                const double a_ik = a.at(i, k);
                const double* b_row = b.data + k * b.ld;
                for (std::size_t j = 0; j < N; ++j) c_row[j] += a_ik * b_row[j];
            }
        } else {
            // Columns of op(B) are contiguous (or N is too narrow to vectorise over): one dot product each.
            const double* a_row = a.offset(i, 0).data;
            for (std::size_t j = 0; j < N; ++j) {
                const double dot = strided_dot(a_row, a.col_step(), b.offset(0, j).data, b.row_step(), K);
                c_row[j] = accumulate ? c_row[j] + dot : dot;
            }
        }
    }
}

// Below this many multiply-adds (about 32³) packing and blocking cost more than they save; a single row
// or column of output (M == 1 or N == 1) is a matrix-vector product, which is memory bound either way.
constexpr std::size_t direct_path_max_work = 32 * 32 * 32;

bool use_direct_path(std::size_t M, std::size_t N, std::size_t K) {
    return M == 1 || N == 1 || M * N * K <= direct_path_max_work;
}

// ---------------------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------------------

// A tiny persistent pool. Workers are started on first use and then sleep on a condition variable between
// calls, so a parallel gemm costs a wake-up (microseconds) rather than a thread start (tens of them).
// One parallel gemm at a time: a caller that finds the pool busy (gemm called from several threads at
// once) gets `false` and runs serially instead of waiting.
class worker_pool {
public:
    static worker_pool& instance() {
        static worker_pool pool;
        return pool;
    }

    // Runs task(0), …, task(parts − 1) concurrently, task(0) on the calling thread. Exceptions thrown by
    // any part are rethrown here (the first one wins).
    template <class Task>
    bool try_run(std::size_t parts, Task& task) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            while (workers_.size() + 1 < parts) {
                const std::size_t index = workers_.size() + 1;
                workers_.emplace_back([this, index, seen = generation_] { worker_loop(index, seen); });
            }
            run_part_ = [](void* context, std::size_t part) { (*static_cast<Task*>(context))(part); };
            context_ = &task;
            parts_ = parts;
            pending_ = parts - 1;
            error_ = nullptr;
            ++generation_;
        }
        wake_.notify_all();

        std::exception_ptr own_error;
        try {
            task(0);
        } catch (...) {
            own_error = std::current_exception();
        }
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        if (own_error) std::rethrow_exception(own_error);
        if (error_) std::rethrow_exception(error_);
        return true;
    }

    ~worker_pool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (std::thread& worker : workers_) worker.join();
    }

private:
    worker_pool() = default;

    void worker_loop(std::size_t index, std::uint64_t seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            if (index >= parts_) continue;  // this call needs fewer threads than the pool has
            void (*run_part)(void*, std::size_t) = run_part_;
            void* context = context_;
            lock.unlock();
            std::exception_ptr error;
            try {
                run_part(context, index);
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            if (error && !error_) error_ = error;
            if (--pending_ == 0) done_.notify_one();
        }
    }

    std::mutex busy_;   // held for the whole of a parallel call
    std::mutex mutex_;  // guards everything below
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::thread> workers_;
    std::uint64_t generation_ = 0;  // bumped once per call; workers wait for it to change
    void (*run_part_)(void*, std::size_t) = nullptr;
    void* context_ = nullptr;
    std::size_t parts_ = 0;
    std::size_t pending_ = 0;  // parts not yet finished by workers
    std::exception_ptr error_;
    bool stopping_ = false;
};

// Waking the worker and splitting the packing costs roughly 10–20 µs; below ~4 M multiply-adds
// (≈ 100 µs on one core) a second thread does not win that back.
constexpr std::size_t parallel_min_work = std::size_t{1} << 22;

std::size_t usable_threads(int requested, std::size_t M, std::size_t N, std::size_t K) {
    if (requested <= 1 || M * N * K < parallel_min_work) return 1;
    const std::size_t hardware = std::max(1u, std::thread::hardware_concurrency());
    return std::min(static_cast<std::size_t>(requested), hardware);
}

// Splits the longer of M and N into `parts` slabs of whole micro-tiles and runs the blocked path on each
// slab in its own thread. Slabs write disjoint parts of C, so they need no synchronisation; each thread
// packs its own share of op(A)/op(B) into its own thread-local buffers.
bool gemm_parallel(std::size_t parts, const matrix_operand& a, const matrix_operand& b, std::size_t M,
                   std::size_t N, std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    const bool split_n = N >= M;
    const std::size_t extent = split_n ? N : M;
    const std::size_t tile = split_n ? nr : mr;
    const std::size_t slab = round_up((extent + parts - 1) / parts, tile);
    if (slab >= extent) return false;  // too narrow to give every thread a tile

    auto task = [&](std::size_t part) {
        const std::size_t begin = std::min(part * slab, extent);
        const std::size_t end = std::min(begin + slab, extent);
        if (begin == end) return;
        if (split_n)
            gemm_blocked(a, b.offset(0, begin), M, end - begin, K, C + begin, ldc, accumulate);
        else
            gemm_blocked(a.offset(begin, 0), b, end - begin, N, K, C + begin * ldc, ldc, accumulate);
    };
    return worker_pool::instance().try_run(parts, task);
}

// ---------------------------------------------------------------------------------------------------------
// Argument checks shared by gemm and gemm_reference
// ---------------------------------------------------------------------------------------------------------

void check_leading_dimension(const char* name, std::size_t rows, std::size_t width, std::size_t ld) {
    if (rows > 0 && width > 0 && ld < width)
        throw std::invalid_argument(std::string("gemm: leading dimension of ") + name +
                                    " is smaller than its stored width");
}

void check_arguments(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K,
                     std::size_t lda, std::size_t ldb, std::size_t ldc) {
    // Stored shapes: A is M×K or K×M, B is K×N or N×K.
    check_leading_dimension("A", ta == Transpose::no ? M : K, ta == Transpose::no ? K : M, lda);
    check_leading_dimension("B", tb == Transpose::no ? K : N, tb == Transpose::no ? N : K, ldb);
    check_leading_dimension("C", M, N, ldc);
}

// Handles the shapes where there is nothing to multiply. Returns true if the call is complete.
bool handle_empty(std::size_t M, std::size_t N, std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    if (M == 0 || N == 0) return true;
    if (K > 0) return false;
    if (!accumulate)  // the empty sum
        for (std::size_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0);
    return true;
}

}  // namespace

void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, const double* A,
          std::size_t lda, const double* B, std::size_t ldb, double* C, std::size_t ldc, bool accumulate,
          int threads) {
    check_arguments(ta, tb, M, N, K, lda, ldb, ldc);
    if (handle_empty(M, N, K, C, ldc, accumulate)) return;

    const matrix_operand a{A, lda, ta == Transpose::yes};
    const matrix_operand b{B, ldb, tb == Transpose::yes};
    if (use_direct_path(M, N, K)) {
        gemm_direct(a, b, M, N, K, C, ldc, accumulate);
        return;
    }
    const std::size_t parts = usable_threads(threads, M, N, K);
    if (parts > 1 && gemm_parallel(parts, a, b, M, N, K, C, ldc, accumulate)) return;
    gemm_blocked(a, b, M, N, K, C, ldc, accumulate);
}

void gemm_reference(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, const double* A,
                    std::size_t lda, const double* B, std::size_t ldb, double* C, std::size_t ldc,
                    bool accumulate) {
    check_arguments(ta, tb, M, N, K, lda, ldb, ldc);
    const matrix_operand a{A, lda, ta == Transpose::yes};
    const matrix_operand b{B, ldb, tb == Transpose::yes};
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            double sum = 0.0;
            for (std::size_t k = 0; k < K; ++k) sum += a.at(i, k) * b.at(k, j);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum : sum;
        }
}

const char* gemm_kernel_name() noexcept { return kernel_name; }

}  // namespace tapeflow::kernels
