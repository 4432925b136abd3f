#include "flows/image.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/bijector.hpp"

namespace tapeflow::flows {

std::string to_string(const ImageShape& s) { return fmt::format("[{}, {}, {}]", s.channels, s.height, s.width); }

void require_image_shape(const ImageShape& s, const std::string& who) {
    if (s.numel() == 0)
        throw std::invalid_argument(fmt::format("{}: every size of the image shape {} must be positive", who, to_string(s)));
}

Var as_images(const Var& batch, const ImageShape& s, const std::string& who) {
    require_batch(batch, s.numel(), fmt::format("{} (images {} flattened)", who, to_string(s)));
    return reshape(batch, Shape{batch.shape()[0], s.channels, s.height, s.width});
}

Var as_batch(const Var& images) {
    const std::size_t n = images.shape()[0];
    return reshape(images, Shape{n, images.numel() / n});
}

Var sum_per_sample(const Var& images) { return sum(as_batch(images), 1); }

}  // namespace tapeflow::flows
