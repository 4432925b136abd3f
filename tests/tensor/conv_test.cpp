// conv2d against the defining sum computed by plain loops, on odd sizes (1 × 1 images, one channel,
// H ≠ W, 1 × 1 / 3 × 3 / 5 × 5 kernels, batches that fill several chunks of the lowering); a hand-computed
// example; the backward products as adjoints (⟨conv(x), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩) and against loops;
// padding, cropping, the per-channel sum, and the shape errors.
#include "tensor/conv.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/reduce.hpp"

using namespace tapeflow;

namespace {

// y[n, o, i, j] = b[o] + Σ_{c,p,q} w[o, c, p, q] · x[n, c, i + p − r, j + q − r], straight from the
// definition in tensor/conv.hpp.
Tensor naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& b) {
    const std::size_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
    const std::size_t O = w.shape()[0], k = w.shape()[2];
    const long r = static_cast<long>(k / 2);
    Tensor y = Tensor::zeros(Shape{N, O, H, W});
    for (std::size_t n = 0; n < N; ++n)
        for (std::size_t o = 0; o < O; ++o)
            for (std::size_t i = 0; i < H; ++i)
                for (std::size_t j = 0; j < W; ++j) {
                    double acc = b.defined() ? b[o] : 0.0;
                    for (std::size_t c = 0; c < C; ++c)
                        for (std::size_t p = 0; p < k; ++p)
                            for (std::size_t q = 0; q < k; ++q) {
                                const long si = static_cast<long>(i + p) - r, sj = static_cast<long>(j + q) - r;
                                if (si < 0 || sj < 0 || si >= static_cast<long>(H) || sj >= static_cast<long>(W))
                                    continue;
                                acc += w.at({o, c, p, q}) *
                                       x.at({n, c, static_cast<std::size_t>(si), static_cast<std::size_t>(sj)});
                            }
                    y.at({n, o, i, j}) = acc;
                }
    return y;
}

double dot(const Tensor& a, const Tensor& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.numel(); ++i) s += a[i] * b[i];
    return s;
}

struct Case {
    std::size_t n, c, h, w, out, k;
};
// 1 × 1 images, one channel, H ≠ W, a kernel wider than the image, 28 × 28 (one image per product),
// 7 × 7 × 20 (8 images per product, then a partial chunk of 4), an inner dimension C·k² = 288 cut into
// two slices of the micro-kernel's depth with 9 output channels (a partial sliver of weight rows), and
// a batch large enough to be split in parts (between threads, and the weight gradient's two halves).
const std::vector<Case> cases = {{1, 1, 1, 1, 1, 3}, {2, 1, 3, 5, 2, 3},  {3, 2, 4, 1, 3, 3},
                                 {2, 3, 5, 4, 2, 1}, {2, 2, 2, 3, 3, 5},  {2, 1, 28, 28, 4, 3},
                                 {20, 3, 7, 7, 5, 3}, {1, 4, 6, 6, 2, 1}, {8, 32, 7, 7, 9, 3},
                                 {6, 16, 14, 14, 16, 3}};

// x [N, C, H, W] and w [C_out, C, k, k] of a case, drawn in that order.
struct Operands {
    Tensor x, w;
};
Operands draw(const Case& c, Rng& rng) {
    Tensor x = randn(Shape{c.n, c.c, c.h, c.w}, rng);
    return {x, randn(Shape{c.out, c.c, c.k, c.k}, rng)};
}

std::string label(const Case& c) {
    return fmt::format("x [{}, {}, {}, {}], {} × {} kernel, {} out", c.n, c.c, c.h, c.w, c.k, c.k, c.out);
}

}  // namespace

TEST_CASE("conv2d: a hand-computed 3 × 3 example") {
    // x = 1…9 in one 3 × 3 image; a kernel of ones sums each pixel's in-image neighbourhood:
    // corners 1+2+4+5 = 12, 2+3+5+6 = 16, …, centre 45. The bias 0.5 is added to all.
    const Tensor x(Shape{1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    const Tensor w = Tensor::ones(Shape{1, 1, 3, 3});
    const Tensor want(Shape{1, 1, 3, 3}, {12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5});
    CHECK(equal(conv2d(x, w, Tensor{0.5}), want));
    // A kernel that is 1 only at its top-left entry (p = q = 0) reads x[i − 1, j − 1]: the image
    // shifted down and right, zeros coming in.
    Tensor corner = Tensor::zeros(Shape{1, 1, 3, 3});
    corner[0] = 1;
    CHECK(equal(conv2d(x, corner), Tensor(Shape{1, 1, 3, 3}, {0, 0, 0, 0, 1, 2, 0, 4, 5})));
}

TEST_CASE("conv2d agrees with the defining sum on odd sizes, with and without bias") {
    Rng rng(7);
    for (const Case& c : cases) {
        INFO(label(c));
        const auto [x, w] = draw(c, rng);
        const Tensor b = randn(Shape{c.out}, rng);
        CHECK(max_abs_diff(conv2d(x, w, b), naive_conv2d(x, w, b)) <= 1e-12);
        CHECK(max_abs_diff(conv2d(x, w), naive_conv2d(x, w, Tensor())) <= 1e-12);
    }
}

TEST_CASE("conv2d's backward products are its adjoints and match the loops") {
    Rng rng(8);
    for (const Case& c : cases) {
        INFO(label(c));
        const auto [x, w] = draw(c, rng);
        const Tensor dy = randn(Shape{c.n, c.out, c.h, c.w}, rng);
        const Tensor y = conv2d(x, w);
        const double scale = std::max(1.0, std::abs(dot(y, dy)));
        // y is linear in x and in w: ⟨y, dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩.
        const Tensor dx = conv2d_input_grad(dy, w);
        const Tensor dw = conv2d_weight_grad(x, dy, c.k);
        CHECK(dx.shape() == x.shape());
        CHECK(dw.shape() == w.shape());
        CHECK(std::abs(dot(y, dy) - dot(x, dx)) <= 1e-12 * scale);
        CHECK(std::abs(dot(y, dy) - dot(w, dw)) <= 1e-12 * scale);
        // Element by element: dx[e] = ⟨conv(e_x), dy⟩ and dw[e] = ⟨conv(x; e_w), dy⟩ for unit tensors e.
        for (std::size_t e = 0; e < std::min<std::size_t>(x.numel(), 7); ++e) {
            Tensor unit = Tensor::zeros(x.shape());
            unit[e] = 1;
            CHECK(dx[e] == doctest::Approx(dot(naive_conv2d(unit, w, Tensor()), dy)).epsilon(1e-12));
        }
        for (std::size_t e = 0; e < std::min<std::size_t>(w.numel(), 7); ++e) {
            Tensor unit = Tensor::zeros(w.shape());
            unit[e] = 1;
            CHECK(dw[e] == doctest::Approx(dot(naive_conv2d(x, unit, Tensor()), dy)).epsilon(1e-12));
        }
        const Tensor db = conv2d_bias_grad(dy);
        for (std::size_t o = 0; o < c.out; ++o) {
            double s = 0;
            for (std::size_t n = 0; n < c.n; ++n)
                for (std::size_t p = 0; p < c.h * c.w; ++p) s += dy[(n * c.out + o) * c.h * c.w + p];
            CHECK(db[o] == doctest::Approx(s).epsilon(1e-13));
        }
    }
}

TEST_CASE("flip_kernel swaps the channel axes and reverses the kernel in space") {
    const Tensor w(Shape{1, 2, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18});
    const Tensor f = flip_kernel(w);
    CHECK(f.shape() == Shape{2, 1, 3, 3});
    CHECK(equal(f, Tensor(Shape{2, 1, 3, 3}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 18, 17, 16, 15, 14, 13, 12, 11, 10})));
    CHECK(equal(flip_kernel(f), w));
}

TEST_CASE("pad2d surrounds each image with zeros; crop2d takes the window back") {
    const Tensor x(Shape{1, 1, 2, 2}, {1, 2, 3, 4});
    const Tensor p = pad2d(x, 1, 0, 0, 2);
    CHECK(equal(p, Tensor(Shape{1, 1, 3, 4}, {0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0})));
    CHECK(equal(crop2d(p, 1, 0, 2, 2), x));
    Rng rng(9);
    const Tensor batch = randn(Shape{2, 3, 4, 5}, rng);
    CHECK(equal(crop2d(pad2d(batch, 2, 1, 3, 0), 2, 3, 4, 5), batch));
    CHECK(sum(pad2d(batch, 2, 1, 3, 0)).item() == doctest::Approx(sum(batch).item()).epsilon(1e-14));
    CHECK_THROWS_WITH_AS(crop2d(batch, 1, 0, 4, 5), doctest::Contains("does not fit"), std::invalid_argument);
}

TEST_CASE("sum_per_channel sums over images and pixels") {
    const Tensor x(Shape{2, 2, 1, 2}, {1, 2, 10, 20, 3, 4, 30, 40});
    CHECK(equal(sum_per_channel(x), Tensor{10, 100}));
}

TEST_CASE("conv2d: shape errors name what is wrong") {
    const Tensor x = Tensor::ones(Shape{2, 3, 4, 4});
    CHECK_THROWS_WITH_AS(conv2d(Tensor::ones(Shape{3, 4, 4}), Tensor::ones(Shape{1, 3, 3, 3})),
                         doctest::Contains("[N, C, H, W], got shape [3, 4, 4]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones(Shape{1, 3, 2, 2})), doctest::Contains("odd size"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones(Shape{1, 3, 3, 1})), doctest::Contains("square"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones(Shape{1, 2, 3, 3})), doctest::Contains("C_in = 2"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d(x, Tensor::ones(Shape{2, 3, 3, 3}), Tensor::ones(Shape{3})),
                         doctest::Contains("[C_out] = [2]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d_input_grad(Tensor::ones(Shape{2, 5, 4, 4}), Tensor::ones(Shape{2, 3, 3, 3})),
                         doctest::Contains("C_out = 2"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d_weight_grad(x, Tensor::ones(Shape{2, 2, 4, 3}), 3),
                         doctest::Contains("[N, C_out, H, W]"), std::invalid_argument);
}

TEST_CASE("conv2d and its backward products give the same bits with one thread or two") {
    Rng rng(12);
    const Case c{6, 16, 14, 14, 16, 3};
    const auto [x, w] = draw(c, rng);
    const Tensor b = randn(Shape{c.out}, rng);
    const Tensor dy = randn(Shape{c.n, c.out, c.h, c.w}, rng);
    const int before = num_threads();
    set_num_threads(1);
    const Tensor y1 = conv2d(x, w, b), dx1 = conv2d_input_grad(dy, w), dw1 = conv2d_weight_grad(x, dy, c.k);
    set_num_threads(2);
    const Tensor y2 = conv2d(x, w, b), dx2 = conv2d_input_grad(dy, w), dw2 = conv2d_weight_grad(x, dy, c.k);
    set_num_threads(before);
    CHECK(equal(y1, y2));
    CHECK(equal(dx1, dx2));
    CHECK(equal(dw1, dw2));
    CHECK(max_abs_diff(y1, naive_conv2d(x, w, b)) < 1e-11);
}
