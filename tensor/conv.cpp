#include "tensor/conv.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "tensor/micro_kernel.hpp"
#include "tensor/parallel.hpp"

namespace tapeflow {

namespace {

struct ImageShape {
    std::size_t n, c, h, w;
    std::size_t pixels() const { return h * w; }
};

ImageShape image_shape(const Tensor& x) { return {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]}; }

// The kernel size k of a weight [C_out, C_in, k, k] that has been checked by require_weight.
std::size_t kernel_size(const Tensor& weight) { return weight.shape()[2]; }

void require_weight(const Tensor& weight, const char* who) {
    require_defined(weight, who);
    if (weight.rank() != 4)
        throw std::invalid_argument(
            fmt::format("{}: the weight must be [C_out, C_in, k, k], got shape {}", who, weight.shape()));
    const std::size_t kh = weight.shape()[2], kw = weight.shape()[3];
    if (kh != kw || kh % 2 == 0)
        throw std::invalid_argument(fmt::format(
            "{}: the kernel must be square with an odd size k (\"same\" padding by (k − 1)/2), got {} × {} "
            "(weight shape {})",
            who, kh, kw, weight.shape()));
}

// Images are laid side by side in one column matrix until it is at least this wide: with 7 × 7 images
// one image alone would give 49 columns, two thirds of them filling the gemm's 24-wide micro-tiles.
// Much wider only makes the packed columns fall out of L2 (measured on the RealNVP step of
// bench_conv: 192–384 columns best, 768 4 % slower, 1536 20 % slower).
constexpr std::size_t min_columns = 384;

std::size_t images_per_chunk(const ImageShape& s) {
    if (s.pixels() == 0) return std::max<std::size_t>(s.n, 1);
    return std::clamp<std::size_t>((min_columns + s.pixels() - 1) / s.pixels(), 1, std::max<std::size_t>(s.n, 1));
}

std::size_t round_up(std::size_t value, std::size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// The depth of each slice of an inner dimension of `extent`: equal slices of at most 256 (the gemm's kc,
// tensor/gemm.cpp: an A sliver of 8 × 256 doubles stays in L1 while it sweeps the B slivers).
std::size_t slice_depth(std::size_t extent) {
    constexpr std::size_t kc = 256;
    const std::size_t slices = std::max<std::size_t>(1, (extent + kc - 1) / kc);
    return (extent + slices - 1) / slices;
}

// Convolutions smaller than this many multiply-adds run on one thread (a second one costs a few µs to
// wake, as for gemm: tensor/gemm.cpp, parallel_min_work).
constexpr std::size_t parallel_min_work = std::size_t{1} << 20;

// Scratch that only grows, one set per thread, so a training step allocates nothing here. The packed
// operands must be 64-byte aligned (the micro-kernels load B slivers with aligned vector loads).
struct Scratch {
    std::vector<double> packed_a, packed_b;
    std::vector<double> row;      // one row of X̂ for one chunk
    std::vector<double> product;  // Y of one chunk, [C_out, images·pixels]
    std::vector<double> block;    // nr rows of X̂ (the weight gradient's B sliver before packing)
};
thread_local Scratch scratch;

double* grown(std::vector<double>& buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

double* grown_aligned(std::vector<double>& buffer, std::size_t size) {
    double* raw = grown(buffer, size + 8);
    const auto address = reinterpret_cast<std::uintptr_t>(raw);
    return raw + (round_up(address, 64) - address) / sizeof(double);
}

// Row (c, p, q) of X̂ for the `count` images starting at `x` (each [C, H, W]): column t·H·W + i·W + j
// holds x[t, c, i + p − r, j + q − r], or 0 where that falls outside the image. Within one image the
// row is plane c shifted by (p − r)·W + (q − r) elements: one contiguous copy of the plane, then zeros
// over the rows the shift leaves and the one edge column where it wraps from one row into the next
// (the images are small, so a copy per image row would cost more in calls than in bytes).
void im2col_row(const double* x, const ImageShape& s, std::size_t count, std::size_t k, std::size_t c,
                std::size_t p, std::size_t q, double* row) {
    const auto pixels = static_cast<std::ptrdiff_t>(s.pixels());
    const auto h = static_cast<std::ptrdiff_t>(s.h), w = static_cast<std::ptrdiff_t>(s.w);
    const auto r = static_cast<std::ptrdiff_t>(k / 2);
    const std::ptrdiff_t di = static_cast<std::ptrdiff_t>(p) - r;
    const std::ptrdiff_t dj = static_cast<std::ptrdiff_t>(q) - r;
    // Output rows i with a source row i + di inside the image, and the same range in elements.
    const std::ptrdiff_t i0 = std::clamp<std::ptrdiff_t>(-di, 0, h), i1 = std::clamp<std::ptrdiff_t>(h - di, i0, h);
    const std::ptrdiff_t offset = di * w + dj;
    const std::ptrdiff_t e0 = std::min(pixels, std::max(i0 * w, -offset));
    const std::ptrdiff_t e1 = std::max(e0, std::min(i1 * w, pixels - offset));
    for (std::size_t t = 0; t < count; ++t) {
        const double* image = x + (t * s.c + c) * s.pixels();
        double* out = row + t * s.pixels();
        std::fill(out, out + e0, 0.0);
        std::copy(image + e0 + offset, image + e1 + offset, out + e0);
        std::fill(out + e1, out + pixels, 0.0);
        // The columns j whose source j + dj lies outside the row read the neighbouring row.
        if (dj != 0)
            for (std::ptrdiff_t i = i0; i < i1; ++i) {
                double* line = out + i * w;
                if (dj > 0) std::fill(line + std::max<std::ptrdiff_t>(0, w - dj), line + w, 0.0);
                else std::fill(line, line + std::min(w, -dj), 0.0);
            }
    }
}

// The rows of X̂ one at a time: row `index` is built where `target(index)` points, then
// `use(index, row)` is called on it.
template <class Target, class Use>
void for_each_im2col_row(const double* x, const ImageShape& s, std::size_t count, std::size_t k, Target target,
                         Use use) {
    for (std::size_t c = 0; c < s.c; ++c)
        for (std::size_t p = 0; p < k; ++p)
            for (std::size_t q = 0; q < k; ++q) {
                const std::size_t index = (c * k + p) * k + q;
                double* row = target(index);
                im2col_row(x, s, count, k, c, p, q, row);
                use(index, static_cast<const double*>(row));
            }
}

// Four doubles in one AVX2 register (GCC's vector extension: the compiler picks the instructions).
using Quad = double __attribute__((vector_size(32)));
using Lanes = long long __attribute__((vector_size(32)));  // a shuffle's lane indices

Quad load_quad(const double* from) {
    Quad q;
    std::memcpy(&q, from, sizeof q);
    return q;
}

void store_quad(double* to, Quad q) { std::memcpy(to, &q, sizeof q); }

// step[d·nr + j] = rows[j·stride + d] for j < live, d < depth, and 0 for live ≤ j < nr: `live` rows of
// length `depth` transposed into the nr-wide steps of a B sliver. 4 × 4 blocks are transposed in
// registers (four loads, eight shuffles, four stores instead of sixteen scalar moves); the edges go one
// element at a time.
void transpose_rows(const double* rows, std::size_t stride, std::size_t live, std::size_t depth, std::size_t nr,
                    double* step) {
    const std::size_t live4 = live / 4 * 4, depth4 = depth / 4 * 4;
    for (std::size_t j = 0; j < live4; j += 4) {
        const double* r = rows + j * stride;
        for (std::size_t d = 0; d < depth4; d += 4) {
            const Quad r0 = load_quad(r + d), r1 = load_quad(r + stride + d);
            const Quad r2 = load_quad(r + 2 * stride + d), r3 = load_quad(r + 3 * stride + d);
            const Quad t0 = __builtin_shuffle(r0, r1, Lanes{0, 4, 2, 6});
            const Quad t1 = __builtin_shuffle(r0, r1, Lanes{1, 5, 3, 7});
            const Quad t2 = __builtin_shuffle(r2, r3, Lanes{0, 4, 2, 6});
            const Quad t3 = __builtin_shuffle(r2, r3, Lanes{1, 5, 3, 7});
            double* to = step + d * nr + j;
            store_quad(to, __builtin_shuffle(t0, t2, Lanes{0, 1, 4, 5}));
            store_quad(to + nr, __builtin_shuffle(t1, t3, Lanes{0, 1, 4, 5}));
            store_quad(to + 2 * nr, __builtin_shuffle(t0, t2, Lanes{2, 3, 6, 7}));
            store_quad(to + 3 * nr, __builtin_shuffle(t1, t3, Lanes{2, 3, 6, 7}));
        }
        for (std::size_t d = depth4; d < depth; ++d)
            for (std::size_t jj = j; jj < j + 4; ++jj) step[d * nr + jj] = rows[jj * stride + d];
    }
    for (std::size_t d = 0; d < depth; ++d) {
        double* to = step + d * nr;
        for (std::size_t j = live4; j < live; ++j) to[j] = rows[j * stride + d];
        for (std::size_t j = live; j < nr; ++j) to[j] = 0.0;
    }
}

// Copies `live` ≤ nr doubles and zeros the rest of an nr-wide sliver step. The full steps (all but the
// last of a row) copy a compile-time count, which the compiler inlines as a few vector moves instead of
// a call to memmove for every 24 doubles (std::copy_n of a constant 192 bytes still called memmove).
template <std::size_t NR>
void copy_step(const double* from, std::size_t live, double* to) {
    if (live == NR) {
        for (std::size_t j = 0; j < NR; j += 4) store_quad(to + j, load_quad(from + j));
        return;
    }
    for (std::size_t j = 0; j < live; ++j) to[j] = from[j];
    for (std::size_t j = live; j < NR; ++j) to[j] = 0.0;
}

void copy_step(const double* from, std::size_t live, std::size_t nr, double* to) {
    switch (nr) {
        case 8: return copy_step<8>(from, live, to);
        case 16: return copy_step<16>(from, live, to);
        case 24: return copy_step<24>(from, live, to);
        default:
            std::copy_n(from, live, to);
            std::fill(to + live, to + nr, 0.0);
    }
}

// A [M, depth] matrix packed for the micro-kernel as its A operand (tensor/micro_kernel.hpp): one block
// per slice of the depth, each a run of mr-row slivers stored step by step, rows past M zero. Element
// (i, d) is column(d)[i · row_step]. Slice pc starts at dst + pc·round_up(M, mr).
template <class Column>
void pack_a(std::size_t M, std::size_t depth, std::size_t mr, std::size_t row_step, Column column, double* dst) {
    const std::size_t rows = round_up(M, mr), kc_step = slice_depth(depth);
    for (std::size_t pc = 0; pc < depth; pc += kc_step) {
        const std::size_t kc = std::min(kc_step, depth - pc);
        double* slice = dst + pc * rows;
        for (std::size_t d = 0; d < kc; ++d) {
            const double* from = column(pc + d);
            for (std::size_t i0 = 0; i0 < rows; i0 += mr)
                for (std::size_t r = 0; r < mr; ++r)
                    slice[i0 * kc + d * mr + r] = i0 + r < M ? from[(i0 + r) * row_step] : 0.0;
        }
    }
}

// The chunk's dY as the A operand [C_out, width] of dW = dY · X̂ᵀ, packed as pack_a does: column
// d = t·pixels + i is pixel i of image t, its channels `pixels` apart. Within one image, an mr-row
// sliver's run of columns is mr channel rows of contiguous pixels, so transpose_rows packs it.
void pack_gradient_a(const double* grads, std::size_t out_channels, std::size_t pixels, std::size_t width,
                     std::size_t mr, double* dst) {
    const std::size_t rows = round_up(out_channels, mr), kc_step = slice_depth(width);
    for (std::size_t pc = 0; pc < width; pc += kc_step) {
        const std::size_t kc = std::min(kc_step, width - pc);
        double* slice = dst + pc * rows;
        for (std::size_t d0 = pc; d0 < pc + kc;) {
            const std::size_t image = d0 / pixels, d1 = std::min(pc + kc, (image + 1) * pixels);
            const double* plane = grads + image * out_channels * pixels + d0 % pixels;
            for (std::size_t i0 = 0; i0 < rows; i0 += mr)
                transpose_rows(plane + i0 * pixels, pixels, i0 < out_channels ? std::min(mr, out_channels - i0) : 0,
                               d1 - d0, mr, slice + i0 * kc + (d0 - pc) * mr);
            d0 = d1;
        }
    }
}

// Y [C_out, width] (+ Y if accumulate) for one chunk: the product of the packed weight (an A operand)
// and X̂, whose rows im2col writes straight into the micro-kernel's B layout — nr-column slivers,
// step by step, one block per slice of the inner dimension C_in·k² — so X̂ is never stored whole and
// never repacked.
void multiply_chunk(const kernels::MicroKernel& kernel, const double* packed_weight, std::size_t out_channels,
                    const double* x, const ImageShape& s, std::size_t count, std::size_t k, double* y,
                    std::size_t ldy, bool accumulate) {
    const std::size_t nr = kernel.nr, inner = s.c * k * k, width = count * s.pixels();
    const std::size_t columns = round_up(width, nr), kc_step = slice_depth(inner);
    double* packed = grown_aligned(scratch.packed_b, inner * columns);
    double* row_buffer = grown(scratch.row, width);
    for_each_im2col_row(x, s, count, k, [row_buffer](std::size_t) { return row_buffer; },
                        [&](std::size_t index, const double* row) {
                            const std::size_t pc = index / kc_step * kc_step, kc = std::min(kc_step, inner - pc);
                            double* step = packed + pc * columns + (index - pc) * nr;
                            for (std::size_t j0 = 0; j0 < width; j0 += nr, step += kc * nr)
                                copy_step(row + j0, std::min(nr, width - j0), nr, step);
                        });
    const std::size_t rows = round_up(out_channels, kernel.mr);
    for (std::size_t pc = 0; pc < inner; pc += kc_step)
        kernel.multiply_block(out_channels, width, std::min(kc_step, inner - pc), packed_weight + pc * rows,
                              packed + pc * columns, y, ldy, accumulate || pc > 0);
}

// y = conv2d(x, weight) + bias, one chunk of images per product Y = W · X̂.
Tensor convolve(const Tensor& x, const Tensor& weight, const Tensor* bias) {
    const ImageShape s = image_shape(x);
    const std::size_t out_channels = weight.shape()[0], k = kernel_size(weight);
    const std::size_t inner = s.c * k * k, pixels = s.pixels();
    Tensor y(Shape{s.n, out_channels, s.h, s.w});
    if (y.numel() == 0) return y;
    if (inner == 0) {
        for (std::size_t t = 0; t < s.n; ++t)
            for (std::size_t o = 0; o < out_channels; ++o)
                std::fill_n(y.data() + (t * out_channels + o) * pixels, pixels, bias ? (*bias)[o] : 0.0);
        return y;
    }
    const kernels::MicroKernel& kernel = kernels::active_kernel();
    double* packed_weight = grown_aligned(scratch.packed_a, round_up(out_channels, kernel.mr) * inner);
    const double* w = weight.data();
    pack_a(out_channels, inner, kernel.mr, inner, [w](std::size_t d) { return w + d; }, packed_weight);
    const std::size_t chunk = images_per_chunk(s), chunks = (s.n + chunk - 1) / chunk;
    // Chunks write disjoint images of y, so any split gives the same result.
    const bool worth_threads = y.numel() * inner >= parallel_min_work;
    const std::size_t parts =
        worth_threads ? std::min<std::size_t>(chunks, static_cast<std::size_t>(num_threads())) : 1;
    in_parts(chunks, parts, [&](std::size_t begin, std::size_t end) {
        for (std::size_t first = begin * chunk; first < std::min(s.n, end * chunk); first += chunk) {
            const std::size_t count = std::min(chunk, s.n - first);
            const std::size_t width = count * pixels;
            const double* images = x.data() + first * s.c * pixels;
            double* out = y.data() + first * out_channels * pixels;
            if (count == 1) {
                // Y is already laid out as y[first]: the bias goes in first and the product accumulates onto it.
                if (bias)
                    for (std::size_t o = 0; o < out_channels; ++o) std::fill_n(out + o * pixels, pixels, (*bias)[o]);
                multiply_chunk(kernel, packed_weight, out_channels, images, s, 1, k, out, pixels, bias != nullptr);
                continue;
            }
            double* product = grown(scratch.product, out_channels * width);
            multiply_chunk(kernel, packed_weight, out_channels, images, s, count, k, product, width, false);
            // Y [C_out, count·pixels] back to count images [C_out, pixels], with the bias added on the way.
            for (std::size_t t = 0; t < count; ++t)
                for (std::size_t o = 0; o < out_channels; ++o) {
                    const double* from = product + o * width + t * pixels;
                    double* to = out + (t * out_channels + o) * pixels;
                    const double b = bias ? (*bias)[o] : 0.0;
                    for (std::size_t i = 0; i < pixels; ++i) to[i] = from[i] + b;
                }
        }
    });
    return y;
}

void require_gradient(const Tensor& dy, std::size_t out_channels, const char* who) {
    require_images(dy, who);
    if (dy.shape()[1] != out_channels)
        throw std::invalid_argument(fmt::format("{}: the gradient {} must have C_out = {} channels (the weight's)",
                                                who, dy.shape(), out_channels));
}

}  // namespace

void require_images(const Tensor& x, const char* who) {
    require_defined(x, who);
    if (x.rank() != 4)
        throw std::invalid_argument(
            fmt::format("{}: expected an image batch [N, C, H, W], got shape {}", who, x.shape()));
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    require_images(x, "conv2d");
    require_weight(weight, "conv2d");
    if (weight.shape()[1] != x.shape()[1])
        throw std::invalid_argument(fmt::format(
            "conv2d: the weight {} takes C_in = {} channels, but the input {} has {}", weight.shape(),
            weight.shape()[1], x.shape(), x.shape()[1]));
    if (bias.defined() && !(bias.shape() == Shape{weight.shape()[0]}))
        throw std::invalid_argument(fmt::format("conv2d: the bias must be [C_out] = [{}], got shape {}",
                                                weight.shape()[0], bias.shape()));
    return convolve(x, weight, bias.defined() ? &bias : nullptr);
}

Tensor flip_kernel(const Tensor& weight) {
    require_weight(weight, "flip_kernel");
    const std::size_t out_channels = weight.shape()[0], in_channels = weight.shape()[1], k = kernel_size(weight);
    Tensor flipped(Shape{in_channels, out_channels, k, k});
    for (std::size_t o = 0; o < out_channels; ++o)
        for (std::size_t c = 0; c < in_channels; ++c)
            for (std::size_t p = 0; p < k; ++p)
                for (std::size_t q = 0; q < k; ++q)
                    flipped[((c * out_channels + o) * k + (k - 1 - p)) * k + (k - 1 - q)] =
                        weight[((o * in_channels + c) * k + p) * k + q];
    return flipped;
}

Tensor conv2d_input_grad(const Tensor& dy, const Tensor& weight) {
    require_weight(weight, "conv2d_input_grad");
    require_gradient(dy, weight.shape()[0], "conv2d_input_grad");
    return convolve(dy, flip_kernel(weight), nullptr);
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, std::size_t kernel) {
    require_images(x, "conv2d_weight_grad");
    require_images(dy, "conv2d_weight_grad");
    if (kernel % 2 == 0)
        throw std::invalid_argument(fmt::format("conv2d_weight_grad: the kernel size must be odd, got {}", kernel));
    const ImageShape s = image_shape(x);
    if (dy.shape()[0] != s.n || dy.shape()[2] != s.h || dy.shape()[3] != s.w)
        throw std::invalid_argument(fmt::format(
            "conv2d_weight_grad: the gradient {} must be [N, C_out, H, W] for the input {}", dy.shape(), x.shape()));
    const std::size_t out_channels = dy.shape()[1], k = kernel, inner = s.c * k * k, pixels = s.pixels();
    Tensor dw = Tensor::zeros(Shape{out_channels, s.c, k, k});
    if (dw.numel() == 0 || s.n * pixels == 0) return dw;
    // dW += dY · X̂ᵀ per chunk: the inner dimension is the chunk's pixels. X̂ᵀ is the B operand, so row
    // `index` of X̂ becomes column `index` of the nr-column slivers, written straight from im2col.
    const kernels::MicroKernel& micro = kernels::active_kernel();
    const std::size_t mr = micro.mr, nr = micro.nr, columns = round_up(inner, nr);
    const std::size_t chunk = images_per_chunk(s), chunks = (s.n + chunk - 1) / chunk;
    // Two halves of the batch, each summed into its own dW and added at the end — two parts whatever
    // the thread count, so the sum is rounded the same way with one thread or two.
    const std::size_t parts = chunks >= 2 && dw.numel() * s.n * pixels >= parallel_min_work ? 2 : 1;
    Tensor second_half = parts == 2 ? Tensor::zeros(dw.shape()) : Tensor();
    in_parts(chunks, parts, [&](std::size_t begin, std::size_t end) {
        double* sum = begin == 0 ? dw.data() : second_half.data();
        for (std::size_t first = begin * chunk; first < std::min(s.n, end * chunk); first += chunk) {
            const std::size_t count = std::min(chunk, s.n - first);
            const std::size_t width = count * pixels, kc_step = slice_depth(width);
            const double* grads = dy.data() + first * out_channels * pixels;
            double* packed_dy = grown_aligned(scratch.packed_a, round_up(out_channels, mr) * width);
            pack_gradient_a(grads, out_channels, pixels, width, mr, packed_dy);
            double* packed = grown_aligned(scratch.packed_b, columns * width);
            // nr rows of X̂ at a time (one sliver's columns), then transposed into the sliver step by step:
            // each step reads one value of each of the nr rows and writes nr contiguous doubles. (Writing
            // each row straight into its strided column touched a sliver's whole width in every row, out of
            // L1: the weight gradient ran 1.4× slower.)
            double* block = grown(scratch.block, nr * width);
            const auto pack_sliver = [&](std::size_t sliver, std::size_t live) {
                for (std::size_t pc = 0; pc < width; pc += kc_step) {
                    const std::size_t kc = std::min(kc_step, width - pc);
                    transpose_rows(block + pc, width, live, kc, nr, packed + pc * columns + sliver * nr * kc);
                }
            };
            // Each row of X̂ is built in its place in the block (no copy).
            for_each_im2col_row(
                x.data() + first * s.c * pixels, s, count, k,
                [&](std::size_t index) { return block + (index % nr) * width; },
                [&](std::size_t index, const double*) {
                    if (index % nr == nr - 1 || index + 1 == inner) pack_sliver(index / nr, index % nr + 1);
                });
        const std::size_t rows = round_up(out_channels, mr);
        for (std::size_t pc = 0; pc < width; pc += kc_step)
            micro.multiply_block(out_channels, inner, std::min(kc_step, width - pc), packed_dy + pc * rows,
                                  packed + pc * columns, sum, inner, true);
    }
    });
    if (parts == 2) dw += second_half;
    return dw;
}

Tensor sum_per_channel(const Tensor& x) {
    require_images(x, "sum_per_channel");
    const ImageShape s = image_shape(x);
    Tensor out = Tensor::zeros(Shape{s.c});
    const double* px = x.data();
    for (std::size_t n = 0; n < s.n; ++n)
        for (std::size_t c = 0; c < s.c; ++c) {
            const double* plane = px + (n * s.c + c) * s.pixels();
            double acc = 0;
            for (std::size_t i = 0; i < s.pixels(); ++i) acc += plane[i];
            out[c] += acc;
        }
    return out;
}

Tensor conv2d_bias_grad(const Tensor& dy) {
    require_images(dy, "conv2d_bias_grad");
    return sum_per_channel(dy);
}

Tensor pad2d(const Tensor& x, std::size_t top, std::size_t bottom, std::size_t left, std::size_t right) {
    require_images(x, "pad2d");
    const ImageShape s = image_shape(x);
    const std::size_t h = s.h + top + bottom, w = s.w + left + right;
    Tensor out = Tensor::zeros(Shape{s.n, s.c, h, w});
    for (std::size_t plane = 0; plane < s.n * s.c; ++plane)
        for (std::size_t i = 0; i < s.h; ++i)
            std::copy_n(x.data() + (plane * s.h + i) * s.w, s.w, out.data() + (plane * h + top + i) * w + left);
    return out;
}

Tensor crop2d(const Tensor& x, std::size_t top, std::size_t left, std::size_t height, std::size_t width) {
    require_images(x, "crop2d");
    const ImageShape s = image_shape(x);
    if (top + height > s.h || left + width > s.w)
        throw std::invalid_argument(fmt::format(
            "crop2d: the window of {} × {} at (top {}, left {}) does not fit in the images {}", height, width, top,
            left, x.shape()));
    Tensor out(Shape{s.n, s.c, height, width});
    for (std::size_t plane = 0; plane < s.n * s.c; ++plane)
        for (std::size_t i = 0; i < height; ++i)
            std::copy_n(x.data() + (plane * s.h + top + i) * s.w + left, width,
                        out.data() + (plane * height + i) * width);
    return out;
}

}  // namespace tapeflow
