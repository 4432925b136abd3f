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
// Skinny products — C narrower than 8 columns or shorter than 4 rows, which includes every 1×1 — skip all
// of this: most of a micro-tile would be padding. They run a direct loop that vectorises over whichever
// dimension is long and contiguous (see "Direct path"). Everything else, even 8×8×8, is faster blocked:
// packing is cheap next to what the micro-kernel gains. Buffers are thread-local and only ever grow, so
// the steady state allocates nothing.
//
// The micro-kernel comes in three builds, each in its own file with its own target flags, chosen at run
// time from the CPU's features (tensor/micro_kernel.hpp): AVX-512 (8×24), AVX2+FMA (6×8) and a portable
// loop the compiler vectorises as it can (4×8). All three share the packing and blocking code here, which
// reads the tile shape (mr×nr) from the kernel a call runs with.
#include "tensor/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
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

#include "tensor/micro_kernel.hpp"

namespace tapeflow::kernels {
namespace {

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
//   amortises the load and store of its C tile (24 cache lines) to under 1%. K is cut into equal slices
//   of at most kc (see balanced_block), so no slice is left with a handful of k steps.
// nc = 480 (a multiple of nr = 24 and of 8): the B block is 256·480·8 B = 960 KiB, half of L2, leaving
//   room for the A slivers and C tiles passing through L2 without evicting B.
// mc = 1024: the A block is only walked once per B block, one L1-sized sliver at a time, so it just
//   needs to fit comfortably in L3 (256·1024·8 B = 2 MiB of 32 MiB). A large mc means op(B) is packed
//   only once for M ≤ 1024 — every repack of B is pure overhead.
// The same numbers suit the AVX2 and portable kernels: their slivers are smaller, so they fit more easily.
// ---------------------------------------------------------------------------------------------------------

constexpr std::size_t kc_block = 256;
// nc and mc rounded down to whole micro-tiles of the kernel.
std::size_t nc_block(const MicroKernel& kernel) { return 480 / kernel.nr * kernel.nr; }
std::size_t mc_block(const MicroKernel& kernel) { return 1024 / kernel.mr * kernel.mr; }

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

std::size_t round_up(std::size_t value, std::size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

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

void gemm_blocked(const MicroKernel& kernel, const matrix_operand& a, const matrix_operand& b, std::size_t M,
                  std::size_t N, std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    const std::size_t mr = kernel.mr;
    const std::size_t nr = kernel.nr;
    const std::size_t mc_step = balanced_block(M, mc_block(kernel), mr);
    const std::size_t nc_step = balanced_block(N, nc_block(kernel), nr);
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
                kernel.multiply_block(mc, nc, kc, packed_a, packed_b, C + ic * ldc + jc, ldc, add_to_c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Direct path for skinny products: no blocking, no packing of the large operand.
//
// When C is narrower than 8 columns or shorter than 4 rows, most of a micro-tile would be zero padding.
// These shapes are common in flows: a 2-D toy flow has layers (batch×2)·(2×64) and (batch×64)·(64×2),
// whose backward passes give M or N of 1 or 2, and the autograd engine multiplies 1×1 matrices all the
// time. Each form below vectorises over whichever dimension is contiguous in memory and long enough.
// ---------------------------------------------------------------------------------------------------------

// Scratch for the direct path, thread-local and grown once like the packing buffers: the few strided rows
// of op(A) or columns of op(B) copied contiguous (dot form), or one column of C (column form).
thread_local aligned_buffer direct_scratch;

// Below this many columns (rows) a vector over N (M) would be mostly empty.
constexpr std::size_t direct_min_vector = 8;

// Σ x[k]·y[k] over contiguous arrays. Sixteen partial sums let the compiler keep several independent
// vector accumulators, so a long dot is limited by loads rather than by the 4-cycle FMA latency of a single
// running sum (strict IEEE semantics forbid the compiler from splitting one sum by itself). Short dots
// (tiny K) skip the setup and reduction of the partial sums.
double contiguous_dot(const double* x, const double* y, std::size_t n) {
    constexpr std::size_t lanes = 16;
    if (n < lanes) {
        double sum = 0.0;
        for (std::size_t k = 0; k < n; ++k) sum += x[k] * y[k];
        return sum;
    }
    double sum[lanes] = {};
    std::size_t k = 0;
    for (; k + lanes <= n; k += lanes)
        for (std::size_t u = 0; u < lanes; ++u) sum[u] += x[k + u] * y[k + u];
    for (std::size_t u = 0; k < n; ++k, ++u) sum[u] += x[k] * y[k];
    for (std::size_t width = lanes / 2; width > 0; width /= 2)
        for (std::size_t u = 0; u < width; ++u) sum[u] += sum[u + width];
    return sum[0];
}

void store(double* c, double value, bool accumulate) { *c = accumulate ? *c + value : value; }

// Row form, for contiguous rows of op(B) (tb = no) and N ≥ 8: c_i = Σ_k a_ik · b_k, vectorised over N.
// Here M < 4 (use_direct_path). A panel of `Rows` rows × `panel` columns of C is small enough to live in
// vector registers for the whole k loop (3 × 32 doubles = 12 zmm), so each row of op(B) is loaded once
// and C is written once, instead of loading and storing the C rows at every k. Columns past the last
// whole panel take the plain loop.
template <std::size_t Rows>
void direct_rows_panels(const matrix_operand& a, const matrix_operand& b, std::size_t N, std::size_t K, double* C,
                        std::size_t ldc, bool accumulate) {
    constexpr std::size_t panel = 32;
    std::size_t j0 = 0;
    for (; j0 + panel <= N; j0 += panel) {
        double acc[Rows][panel] = {};
        for (std::size_t k = 0; k < K; ++k) {
            const double* b_row = b.data + k * b.ld + j0;
            for (std::size_t i = 0; i < Rows; ++i) {
                const double a_ik = a.at(i, k);
                for (std::size_t j = 0; j < panel; ++j) acc[i][j] += a_ik * b_row[j];
            }
        }
        for (std::size_t i = 0; i < Rows; ++i)
            for (std::size_t j = 0; j < panel; ++j) store(C + i * ldc + j0 + j, acc[i][j], accumulate);
    }
    for (std::size_t i = 0; i < Rows; ++i) {
        double* c_row = C + i * ldc;
        if (!accumulate) std::fill(c_row + j0, c_row + N, 0.0);
        for (std::size_t k = 0; k < K; ++k) {
            const double a_ik = a.at(i, k);
            const double* b_row = b.data + k * b.ld;
            for (std::size_t j = j0; j < N; ++j) c_row[j] += a_ik * b_row[j];
        }
    }
}

void direct_rows(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                 std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    for (std::size_t i = 0; i < M; i += 3) {  // one pass when M < 4, as use_direct_path guarantees
        const matrix_operand rows = a.offset(i, 0);
        double* c = C + i * ldc;
        switch (std::min<std::size_t>(3, M - i)) {
            case 1: direct_rows_panels<1>(rows, b, N, K, c, ldc, accumulate); break;
            case 2: direct_rows_panels<2>(rows, b, N, K, c, ldc, accumulate); break;
            default: direct_rows_panels<3>(rows, b, N, K, c, ldc, accumulate); break;
        }
    }
}

// Column form, for contiguous columns of op(A) (ta = yes) and M ≥ 8: the row form applied to
// Cᵀ = op(B)ᵀ·op(A)ᵀ, vectorised over M. Here N < 8 (use_direct_path), so a panel of `panel` rows ×
// `Cols` columns of C fits in vector registers for the whole k loop: each column of op(A) is loaded
// once for all N columns of C, and C is written once. Rows past the last whole panel take a plain loop.
template <std::size_t Cols>
void direct_columns_panels(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t K,
                           double* C, std::size_t ldc, bool accumulate) {
    constexpr std::size_t panel = Cols <= 3 ? 32 : 16;  // ≤ 112 accumulators: 14 zmm
    std::size_t i0 = 0;
    for (; i0 + panel <= M; i0 += panel) {
        double acc[Cols][panel] = {};
        for (std::size_t k = 0; k < K; ++k) {
            const double* a_column = a.data + k * a.ld + i0;
            for (std::size_t j = 0; j < Cols; ++j) {
                const double b_kj = b.at(k, j);
                for (std::size_t i = 0; i < panel; ++i) acc[j][i] += b_kj * a_column[i];
            }
        }
        for (std::size_t i = 0; i < panel; ++i)
            for (std::size_t j = 0; j < Cols; ++j) store(C + (i0 + i) * ldc + j, acc[j][i], accumulate);
    }
    for (std::size_t i = i0; i < M; ++i)
        for (std::size_t j = 0; j < Cols; ++j) {
            double sum = 0.0;
            for (std::size_t k = 0; k < K; ++k) sum += a.data[k * a.ld + i] * b.at(k, j);
            store(C + i * ldc + j, sum, accumulate);
        }
}

void direct_columns(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                    std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    for (std::size_t j = 0; j < N; j += 4) {  // two passes at most, as N < 8
        const matrix_operand columns = b.offset(0, j);
        double* c = C + j;
        switch (std::min<std::size_t>(4, N - j)) {
            case 1: direct_columns_panels<1>(a, columns, M, K, c, ldc, accumulate); break;
            case 2: direct_columns_panels<2>(a, columns, M, K, c, ldc, accumulate); break;
            case 3: direct_columns_panels<3>(a, columns, M, K, c, ldc, accumulate); break;
            default: direct_columns_panels<4>(a, columns, M, K, c, ldc, accumulate); break;
        }
    }
}

// op(X) restricted to rows [0, count) × columns [0, K), with contiguous rows: X itself if its rows already
// are, otherwise a copy written to `scratch` (which is advanced past the copy).
matrix_operand with_contiguous_rows(const matrix_operand& x, std::size_t count, std::size_t K,
                                    double*& scratch) {
    if (!x.transposed) return x;
    for (std::size_t v = 0; v < count; ++v)
        for (std::size_t k = 0; k < K; ++k) scratch[v * K + k] = x.at(v, k);
    const matrix_operand copy{scratch, K, false};
    scratch += count * K;
    return copy;
}

// Dot form, for everything else (N < 8 or tb = yes, and M < 8 or ta = no): c_ij = op(A)_i · op(B)^j
// with both vectors contiguous. Rows of op(A) are contiguous unless ta = yes, and then there are fewer
// than 8 of them; columns of op(B) are contiguous unless tb = no, and then there are fewer than 8. In
// those cases the few strided vectors are copied contiguous once — K·(M or N) copies against M·N·K
// multiply-adds.
void direct_dots(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                 std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    double* scratch = direct_scratch.reserve(((a.transposed ? M : 0) + (b.transposed ? 0 : N)) * K);
    const matrix_operand a_rows = with_contiguous_rows(a, M, K, scratch);
    const matrix_operand b_columns = with_contiguous_rows(b.flipped(), N, K, scratch);  // rows of op(B)ᵀ
    for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
            const double dot = contiguous_dot(a_rows.data + i * a_rows.ld, b_columns.data + j * b_columns.ld, K);
            store(C + i * ldc + j, dot, accumulate);
        }
}

void gemm_direct(const matrix_operand& a, const matrix_operand& b, std::size_t M, std::size_t N,
                 std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    if (!b.transposed && N >= direct_min_vector)
        direct_rows(a, b, M, N, K, C, ldc, accumulate);
    else if (a.transposed && M >= direct_min_vector)
        direct_columns(a, b, M, N, K, C, ldc, accumulate);
    else
        direct_dots(a, b, M, N, K, C, ldc, accumulate);
}

// The blocked path wins as soon as its micro-tile is reasonably full: measured on Zen 5 it beats the
// direct forms from 8×8×8 upwards (118 ns vs 157 ns) and by 2–5× at 16³–32³, even counting the packing.
// It loses when C is narrower than 8 columns (a 24-wide tile is ≥ 2/3 padding: 512×2×64 takes 22 µs
// blocked, 5–8 µs direct) or shorter than 4 rows (matrix-vector-like: 2×64×512 is 1.4–3× faster direct).
bool use_direct_path(std::size_t M, std::size_t N) { return N < 8 || M < 4; }

// ---------------------------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------------------------

// One iteration of a spin-wait. Deliberately *not* the x86 `pause` instruction: under a hypervisor with
// pause-loop exiting (as here), a loop of `pause` can make the vCPU trap to the host; with it a parallel
// 64³ product measured 440 µs instead of 10 µs (one run, possibly also disturbed by other load). Without
// SMT siblings to yield to, `pause` buys nothing. A compiler barrier keeps the loop re-reading the atomics.
inline void spin_once() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// A tiny persistent pool. Workers are started on first use and stay alive, so a parallel gemm does not
// pay for a thread start. Waking a *sleeping* thread is itself slow here — a condition-variable wake-up
// measured ~45 µs on this (virtualised) machine, as long as a whole 128³ product — so after each task a
// worker spins for a while (`spin_time`) watching for the next one before it goes to sleep: a training
// loop issues its gemms microseconds apart and finds the worker awake.
//
// Parts are claimed, not assigned: the caller and the workers all take the next unclaimed part from one
// atomic counter. If the machine is oversubscribed and the worker has not been scheduled by the time the
// caller finishes its own part, the caller simply runs the worker's part too, instead of waiting a whole
// scheduler time slice. (Measured with other jobs saturating both cores: 512×64×64 with two threads ran
// at 4.4 GFLOP/s when each thread owned a fixed half, 12.5 GFLOP/s with claiming.) The caller only ever
// waits for parts that a worker has actually started.
//
// One parallel gemm at a time: a caller that finds the pool busy (gemm called from several threads at
// once) gets `false` and runs serially instead of waiting.
class worker_pool {
public:
    static worker_pool& instance() {
        static worker_pool pool;
        return pool;
    }

    // Runs task(0), …, task(parts − 1), each exactly once, on the calling thread and the workers.
    // Exceptions thrown by any part are rethrown here (the first one wins).
    template <class Task>
    bool try_run(std::size_t parts, Task& task) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock() || parts > max_parts) return false;
        while (workers_.size() + 1 < parts)
            workers_.emplace_back([this, seen = generation_.load()] { worker_loop(seen); });

        // Publish the task, then open the claims and bump the generation (release: whoever claims a part
        // sees the task). The task fields cannot change while anyone holds an unfinished claim, because
        // the next call only starts after every part has finished.
        const std::uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
        run_part_ = [](void* context, std::size_t part) { (*static_cast<Task*>(context))(part); };
        context_ = &task;
        error_ = nullptr;
        finished_.store(0, std::memory_order_relaxed);
        claims_.store(claim_word(generation, parts, 0), std::memory_order_release);
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);  // a worker about to sleep cannot miss this
            generation_.store(generation, std::memory_order_release);
        }
        wake_.notify_all();

        run_claimed_parts(generation);
        for (unsigned spins = 0; finished_.load(std::memory_order_acquire) != parts; ++spins)
            if (spins < 100'000) spin_once(); else std::this_thread::yield();  // a worker was descheduled
        if (error_) std::rethrow_exception(error_);
        return true;
    }

    ~worker_pool() {
        {
            std::lock_guard<std::mutex> lock(sleep_mutex_);
            stopping_.store(true);
        }
        wake_.notify_all();
        for (std::thread& worker : workers_) worker.join();
    }

private:
    static constexpr std::chrono::microseconds spin_time{200};
    static constexpr std::size_t max_parts = 0xffff;

    // The claim counter packs the generation it belongs to, the number of parts and the next unclaimed
    // part into one word, so a claim is one compare-and-swap and a worker that wakes up late cannot claim
    // a part of a newer call by mistake.
    static std::uint64_t claim_word(std::uint64_t generation, std::size_t parts, std::size_t next) {
        return (generation << 32) | (std::uint64_t{parts} << 16) | next;
    }

    worker_pool() = default;

    // Claims and runs parts of call `generation` until none are left (or that call is over).
    void run_claimed_parts(std::uint64_t generation) {
        std::uint64_t word = claims_.load(std::memory_order_acquire);
        for (;;) {
            const std::size_t parts = (word >> 16) & max_parts;
            const std::size_t next = word & max_parts;
            if ((word >> 32) != (generation & 0xffffffff) || next >= parts) return;
            if (!claims_.compare_exchange_weak(word, word + 1, std::memory_order_acquire)) continue;
            try {
                run_part_(context_, next);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
            finished_.fetch_add(1, std::memory_order_release);
            word = claims_.load(std::memory_order_acquire);
        }
    }

    // Returns once the generation differs from `seen` or the pool is stopping: spinning first, then asleep.
    void wait_for_work(std::uint64_t seen) {
        auto ready = [&] {
            return generation_.load(std::memory_order_acquire) != seen ||
                   stopping_.load(std::memory_order_acquire);
        };
        const auto deadline = std::chrono::steady_clock::now() + spin_time;
        for (unsigned spins = 1; !ready(); ++spins) {
            spin_once();
            if (spins % 256 == 0 && std::chrono::steady_clock::now() > deadline) {
                std::unique_lock<std::mutex> lock(sleep_mutex_);
                wake_.wait(lock, ready);
                return;
            }
        }
    }

    void worker_loop(std::uint64_t seen) {
        for (;;) {
            wait_for_work(seen);
            if (stopping_.load(std::memory_order_acquire)) return;
            seen = generation_.load(std::memory_order_acquire);
            run_claimed_parts(seen);
        }
    }

    std::mutex busy_;  // held by the caller for the whole of a parallel call
    std::vector<std::thread> workers_;

    // The current task, written by the caller before it opens the claims.
    void (*run_part_)(void*, std::size_t) = nullptr;
    void* context_ = nullptr;

    std::atomic<std::uint64_t> generation_{0};  // bumped once per call; workers wait for it to change
    std::atomic<std::uint64_t> claims_{0};      // see claim_word
    std::atomic<std::size_t> finished_{0};      // parts of the current call that have completed
    std::atomic<bool> stopping_{false};
    std::mutex sleep_mutex_;
    std::condition_variable wake_;
    std::mutex error_mutex_;
    std::exception_ptr error_;  // first exception thrown by a part
};

// Handing half the product to the (spinning) worker and having both threads pack their own copy of the
// shared operand costs a few µs. Measured: 128×64×64 (0.5 M multiply-adds, 12 µs) gains nothing from a
// second thread, 256×64×64 (1 M) gains 1.2×, 128³ (2 M) 1.45×, 256³ 1.75×.
constexpr std::size_t parallel_min_work = std::size_t{1} << 20;

std::size_t usable_threads(int requested, std::size_t M, std::size_t N, std::size_t K) {
    if (requested <= 1 || M * N * K < parallel_min_work) return 1;
    // Asked once: glibc answers hardware_concurrency() by reading /sys, which is not free per call.
    static const std::size_t hardware = std::max(1u, std::thread::hardware_concurrency());
    return std::min(static_cast<std::size_t>(requested), hardware);
}

// Splits C into `parts` slabs of whole micro-tiles — by rows or by columns, whichever leaves the largest
// slab smallest (rows are cut in steps of mr, columns of nr: with 8×24 a 64-wide C splits into 32 + 32
// rows but only 48 + 16 columns) — and runs the blocked path on each slab in its own thread. Slabs write
// disjoint parts of C, so they need no synchronisation; each thread packs its own operands into its own
// thread-local buffers. K is never split, so every c_ij is summed in the same order whatever `parts` is.
bool gemm_parallel(std::size_t parts, const MicroKernel& kernel, const matrix_operand& a, const matrix_operand& b,
                   std::size_t M, std::size_t N, std::size_t K, double* C, std::size_t ldc, bool accumulate) {
    const std::size_t mr = kernel.mr;
    const std::size_t nr = kernel.nr;
    auto slab_width = [parts](std::size_t extent, std::size_t tile) {
        return round_up((extent + parts - 1) / parts, tile);
    };
    const std::size_t largest_row_slab = std::min(slab_width(M, mr), M) * N;
    const std::size_t largest_column_slab = std::min(slab_width(N, nr), N) * M;
    const bool split_n = largest_column_slab < largest_row_slab ||
                         (largest_column_slab == largest_row_slab && N >= M);
    const std::size_t extent = split_n ? N : M;
    const std::size_t slab = slab_width(extent, split_n ? nr : mr);
    if (slab >= extent) return false;  // too small to give every thread a tile

    auto task = [&](std::size_t part) {
        const std::size_t begin = std::min(part * slab, extent);
        const std::size_t end = std::min(begin + slab, extent);
        if (begin == end) return;
        if (split_n)
            gemm_blocked(kernel, a, b.offset(0, begin), M, end - begin, K, C + begin, ldc, accumulate);
        else
            gemm_blocked(kernel, a.offset(begin, 0), b, end - begin, N, K, C + begin * ldc, ldc, accumulate);
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
    if (use_direct_path(M, N)) {
        gemm_direct(a, b, M, N, K, C, ldc, accumulate);
        return;
    }
    // Read once: every part of a parallel call blocks for the same tile shape.
    const MicroKernel& kernel = active_kernel();
    const std::size_t parts = usable_threads(threads, M, N, K);
    if (parts > 1 && gemm_parallel(parts, kernel, a, b, M, N, K, C, ldc, accumulate)) return;
    gemm_blocked(kernel, a, b, M, N, K, C, ldc, accumulate);
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

}  // namespace tapeflow::kernels
