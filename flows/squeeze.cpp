#include "flows/squeeze.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

ImageShape checked(ImageShape s) {
    require_image_shape(s, "Squeeze");
    if (s.height % 2 != 0 || s.width % 2 != 0)
        throw std::invalid_argument(
            fmt::format("Squeeze: the image {} needs an even height and width to cut into 2 × 2 blocks", to_string(s)));
    return s;
}

Var zero_log_det(const Var& batch) { return Var(Tensor::zeros(Shape{batch.shape()[0]})); }

}  // namespace

// [N, C, H, W] = [N, C, H/2, a, W/2, b] → [N, C, a, b, H/2, W/2] = [N, 4C, H/2, W/2].
Var squeeze2x2(const Var& images) {
    const Shape& s = images.shape();
    const std::size_t n = s[0], c = s[1], h = s[2] / 2, w = s[3] / 2;
    const Var blocks = reshape(images, Shape{n, c, h, 2, w, 2});
    return reshape(permute(blocks, {0, 1, 3, 5, 2, 4}), Shape{n, 4 * c, h, w});
}

// The inverse permutation: [N, 4C, h, w] = [N, C, a, b, h, w] → [N, C, h, a, w, b] = [N, C, 2h, 2w].
Var unsqueeze2x2(const Var& images) {
    const Shape& s = images.shape();
    const std::size_t n = s[0], c = s[1] / 4, h = s[2], w = s[3];
    const Var blocks = reshape(images, Shape{n, c, 2, 2, h, w});
    return reshape(permute(blocks, {0, 1, 4, 2, 5, 3}), Shape{n, c, 2 * h, 2 * w});
}

Squeeze::Squeeze(ImageShape image) : image_(checked(image)) {}

Transformed Squeeze::forward(const Var& z) {
    return {as_batch(unsqueeze2x2(as_images(z, latent_shape(), "Squeeze::forward"))), zero_log_det(z)};
}

Transformed Squeeze::inverse(const Var& x) {
    return {as_batch(squeeze2x2(as_images(x, image_, "Squeeze::inverse"))), zero_log_det(x)};
}

std::string Squeeze::name() const {
    return fmt::format("Squeeze({} → {})", to_string(image_), to_string(latent_shape()));
}

}  // namespace tapeflow::flows
