#include "flows/channel_actnorm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/conv.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/reduce.hpp"
#include "autograd/shape_ops.hpp"

namespace tapeflow::flows {

namespace {

ImageShape checked(ImageShape s) {
    require_image_shape(s, "ChannelActNorm");
    return s;
}

}  // namespace

ChannelActNorm::ChannelActNorm(ImageShape image)
    : image_(checked(image)),
      loc_(register_parameter("loc", Tensor::zeros(Shape{image.channels}))),
      log_scale_(register_parameter("log_scale", Tensor::zeros(Shape{image.channels}))),
      initialized_(register_buffer("initialized", Tensor::zeros(Shape{1}))) {}

void ChannelActNorm::initialize(const Tensor& x) {
    require_batch(Var(x), image_.numel(), "ChannelActNorm::initialize");
    const std::size_t n = x.shape()[0], pixels = image_.height * image_.width, count = n * pixels;
    if (count < 2)
        throw std::invalid_argument(fmt::format(
            "ChannelActNorm: the data-dependent initialization needs at least 2 values per channel, got N·H·W = {}",
            count));
    Tensor loc(Shape{image_.channels}), log_scale(Shape{image_.channels});
    for (std::size_t c = 0; c < image_.channels; ++c) {
        const auto plane = [&](std::size_t i) { return x.data() + (i * image_.channels + c) * pixels; };
        double mean = 0;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t p = 0; p < pixels; ++p) mean += plane(i)[p];
        mean /= static_cast<double>(count);
        double var = 0;  // two passes: no cancellation of E[x²] − E[x]²
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t p = 0; p < pixels; ++p) var += (plane(i)[p] - mean) * (plane(i)[p] - mean);
        var /= static_cast<double>(count);
        if (!std::isfinite(mean) || !std::isfinite(var))
            throw std::invalid_argument(fmt::format(
                "ChannelActNorm: the data-dependent initialization met a non-finite value in channel {} of the batch", c));
        loc[c] = mean;
        log_scale[c] = var > 0 ? 0.5 * std::log(var) : 0.0;
    }
    // Written in place: the parameters keep their storage (anything holding them sees the new values).
    std::copy_n(loc.data(), image_.channels, loc_.value.data());
    std::copy_n(log_scale.data(), image_.channels, log_scale_.value.data());
    set_initialized();
}

Transformed ChannelActNorm::forward(const Var& z) {
    const Var u = as_images(z, image_, "ChannelActNorm::forward");
    const Var log_scale = log_scale_.var();
    const double pixels = static_cast<double>(image_.height * image_.width);
    const Var log_det = broadcast_to(sum(log_scale) * pixels, Shape{z.shape()[0]});
    return {as_batch(u * per_channel(exp(log_scale)) + per_channel(loc_.var())), log_det};
}

Transformed ChannelActNorm::inverse(const Var& x) {
    const Var u = as_images(x, image_, "ChannelActNorm::inverse");
    if (training() && !initialized()) initialize(x.value());
    const Var log_scale = log_scale_.var();
    const double pixels = static_cast<double>(image_.height * image_.width);
    const Var log_det = broadcast_to(sum(log_scale) * -pixels, Shape{x.shape()[0]});
    return {as_batch((u - per_channel(loc_.var())) * per_channel(exp(-log_scale))), log_det};
}

std::string ChannelActNorm::name() const { return fmt::format("ChannelActNorm({})", to_string(image_)); }

}  // namespace tapeflow::flows
