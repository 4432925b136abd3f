#include "tensor/conv.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "tensor/gemm.hpp"
#include "tensor/parallel.hpp"

namespace tapeflow {

namespace {

using kernels::Transpose;

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
// Much wider only makes X̂ fall out of L2 between im2col writing it and gemm packing it (measured on
// the RealNVP step of bench_conv: 192–384 columns best, 768 4 % slower, 1536 20 % slower).
constexpr std::size_t min_columns = 384;

std::size_t images_per_chunk(const ImageShape& s) {
    if (s.pixels() == 0) return std::max<std::size_t>(s.n, 1);
    return std::clamp<std::size_t>((min_columns + s.pixels() - 1) / s.pixels(), 1, std::max<std::size_t>(s.n, 1));
}

// Scratch matrices that only grow, one set per thread, so a training step allocates nothing here.
struct Scratch {
    std::vector<double> columns;  // X̂ of one chunk
    std::vector<double> product;  // Y or dY of one chunk, [C_out, images·pixels]
};
thread_local Scratch scratch;

double* grown(std::vector<double>& buffer, std::size_t size) {
    if (buffer.size() < size) buffer.resize(size);
    return buffer.data();
}

// X̂ for the `count` images starting at `x` (each [C, H, W]): row (c, p, q), column t·H·W + i·W + j holds
// x[t, c, i + p − r, j + q − r], or 0 where that falls outside the image. Within one image that row is
// image c shifted by (p − r)·W + (q − r) elements: one contiguous copy of the plane, then zeros over
// the rows the shift leaves and the one edge column where it wraps from one row into the next (the
// images are small, so a copy per image row would cost more in calls than in bytes).
void im2col(const double* x, const ImageShape& s, std::size_t count, std::size_t k, double* columns) {
    const auto pixels = static_cast<std::ptrdiff_t>(s.pixels());
    const auto h = static_cast<std::ptrdiff_t>(s.h), w = static_cast<std::ptrdiff_t>(s.w);
    const auto r = static_cast<std::ptrdiff_t>(k / 2);
    const std::size_t width = count * s.pixels();
    for (std::size_t c = 0; c < s.c; ++c)
        for (std::size_t p = 0; p < k; ++p)
            for (std::size_t q = 0; q < k; ++q) {
                double* row = columns + ((c * k + p) * k + q) * width;
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
}

// The columns of `count` images starting at image `first`: x itself for a single image under a 1 × 1
// kernel (its [C, H·W] layout already is X̂), else built into the scratch buffer.
const double* columns_of(const Tensor& x, const ImageShape& s, std::size_t first, std::size_t count, std::size_t k) {
    const double* images = x.data() + first * s.c * s.pixels();
    if (k == 1 && count == 1) return images;
    double* columns = grown(scratch.columns, s.c * k * k * count * s.pixels());
    im2col(images, s, count, k, columns);
    return columns;
}

// y = conv2d(x, weight) + bias, one chunk of images per product Y = W · X̂.
Tensor convolve(const Tensor& x, const Tensor& weight, const Tensor* bias) {
    const ImageShape s = image_shape(x);
    const std::size_t out_channels = weight.shape()[0], k = kernel_size(weight);
    const std::size_t inner = s.c * k * k, pixels = s.pixels();
    Tensor y(Shape{s.n, out_channels, s.h, s.w});
    const std::size_t chunk = images_per_chunk(s);
    for (std::size_t first = 0; first < s.n; first += chunk) {
        const std::size_t count = std::min(chunk, s.n - first);
        const std::size_t width = count * pixels;
        const double* columns = columns_of(x, s, first, count, k);
        double* out = y.data() + first * out_channels * pixels;
        if (count == 1) {
            // Y is already laid out as y[first]: the bias goes in first and the product accumulates onto it.
            if (bias)
                for (std::size_t o = 0; o < out_channels; ++o) std::fill_n(out + o * pixels, pixels, (*bias)[o]);
            kernels::gemm(Transpose::no, Transpose::no, out_channels, width, inner, weight.data(), inner, columns,
                          width, out, width, bias != nullptr, num_threads());
            continue;
        }
        double* product = grown(scratch.product, out_channels * width);
        kernels::gemm(Transpose::no, Transpose::no, out_channels, width, inner, weight.data(), inner, columns, width,
                      product, width, false, num_threads());
        // Y [C_out, count·pixels] back to count images [C_out, pixels], with the bias added on the way.
        for (std::size_t t = 0; t < count; ++t)
            for (std::size_t o = 0; o < out_channels; ++o) {
                const double* from = product + o * width + t * pixels;
                double* to = out + (t * out_channels + o) * pixels;
                const double b = bias ? (*bias)[o] : 0.0;
                for (std::size_t i = 0; i < pixels; ++i) to[i] = from[i] + b;
            }
    }
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
    const std::size_t chunk = images_per_chunk(s);
    for (std::size_t first = 0; first < s.n; first += chunk) {
        const std::size_t count = std::min(chunk, s.n - first);
        const std::size_t width = count * pixels;
        const double* columns = columns_of(x, s, first, count, k);
        const double* grads = dy.data() + first * out_channels * pixels;
        if (count > 1) {
            // dY of the chunk side by side, [C_out, count·pixels], matching the columns of X̂.
            double* gathered = grown(scratch.product, out_channels * width);
            for (std::size_t t = 0; t < count; ++t)
                for (std::size_t o = 0; o < out_channels; ++o)
                    std::copy_n(grads + (t * out_channels + o) * pixels, pixels, gathered + o * width + t * pixels);
            grads = gathered;
        }
        // dW += dY · X̂ᵀ, summed over the chunks.
        kernels::gemm(Transpose::no, Transpose::yes, out_channels, inner, width, grads, width, columns, width,
                      dw.data(), inner, true, num_threads());
    }
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
