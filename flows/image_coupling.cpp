#include "flows/image_coupling.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/conv.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/coupling.hpp"
#include "tensor/elementwise.hpp"

namespace tapeflow::flows {

namespace {

std::unique_ptr<nn::Layer> checked_conditioner(std::unique_ptr<nn::Layer> conditioner) {
    if (!conditioner) throw std::invalid_argument("ImageAffineCoupling: the conditioner is null");
    return conditioner;
}

}  // namespace

Tensor image_mask(const ImageShape& image, ImageMask kind, std::size_t parity) {
    require_image_shape(image, "image_mask");
    if (parity > 1) throw std::invalid_argument(fmt::format("image_mask: parity must be 0 or 1, got {}", parity));
    const std::size_t c = image.channels, pixels = image.height * image.width;
    Tensor mask(Shape{c, image.height, image.width});
    if (kind == ImageMask::checkerboard) {
        const Tensor board = checkerboard_mask(image.height, image.width, parity);
        for (std::size_t k = 0; k < c; ++k) std::copy_n(board.data(), pixels, mask.data() + k * pixels);
        return mask;
    }
    if (c % 2 != 0)
        throw std::invalid_argument(fmt::format(
            "image_mask: a channel mask splits the channels in halves, but the image {} has {} channels", to_string(image), c));
    for (std::size_t k = 0; k < c; ++k) {
        const bool first_half = k < c / 2;
        std::fill_n(mask.data() + k * pixels, pixels, first_half == (parity == 0) ? 1.0 : 0.0);
    }
    return mask;
}

ImageAffineCoupling::ImageAffineCoupling(ImageShape image, ImageMask kind, std::size_t parity,
                                         std::unique_ptr<nn::Layer> conditioner)
    : image_(image),
      kind_(kind),
      parity_(parity),
      mask_(image_mask(image, kind, parity)),
      complement_(1.0 - mask_),
      scale_(register_parameter("scale", Tensor::ones(Shape{image.channels}))),
      conditioner_(register_module("conditioner", checked_conditioner(std::move(conditioner)))) {}

ImageAffineCoupling::ImageAffineCoupling(ImageShape image, ImageMask kind, std::size_t parity, Rng& rng,
                                         const nn::ResNetOptions& resnet)
    : ImageAffineCoupling(image, kind, parity,
                          nn::make_resnet(image.channels, 2 * image.channels, rng, resnet)) {}

ImageAffineCoupling::ScaleShift ImageAffineCoupling::scale_shift(const Var& images) {
    const Var out = conditioner_(images * Var(mask_));  // s and t see only the copied coordinates b ⊙ u
    const std::size_t n = images.shape()[0], c = image_.channels;
    if (!(out.shape() == Shape{n, 2 * c, image_.height, image_.width}))
        throw std::invalid_argument(fmt::format(
            "ImageAffineCoupling: the conditioner ({}) must return [N, 2C, H, W] = [{}, {}, {}, {}] (s_raw and t), got {}",
            conditioner_.name(), n, 2 * c, image_.height, image_.width, out.shape()));
    const Var complement(complement_);
    // s = (1 − b) ⊙ scale ⊙ tanh(s_raw) bounds every log-scale by |scale_c| (flows/coupling.hpp).
    const Var s = tanh(narrow(out, 1, 0, c)) * (per_channel(scale_.var()) * complement);
    return {s, narrow(out, 1, c, c) * complement};
}

Transformed ImageAffineCoupling::forward(const Var& z) {
    const Var u = as_images(z, image_, "ImageAffineCoupling::forward");
    const ScaleShift st = scale_shift(u);
    return {as_batch((u - st.t) * exp(-st.s)), -sum_per_sample(st.s)};
}

Transformed ImageAffineCoupling::inverse(const Var& x) {
    const Var u = as_images(x, image_, "ImageAffineCoupling::inverse");
    const ScaleShift st = scale_shift(u);
    return {as_batch(u * exp(st.s) + st.t), sum_per_sample(st.s)};
}

std::string ImageAffineCoupling::name() const {
    return fmt::format("ImageAffineCoupling({}, {} mask, parity {})", to_string(image_),
                       kind_ == ImageMask::checkerboard ? "checkerboard" : "channel", parity_);
}

}  // namespace tapeflow::flows
