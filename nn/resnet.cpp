#include "nn/resnet.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "nn/activation.hpp"

namespace tapeflow::nn {

namespace {

// [BatchNorm →] ReLU: the pre-activation in front of every convolution after the first. With batch
// norm the two are one layer (BatchNorm2dOptions::relu: one tape node, one pass each way).
void add_pre_activation(Sequential& net, std::size_t channels, const ResNetOptions& options) {
    if (options.batch_norm) net.emplace<BatchNorm2d>(channels, BatchNorm2dOptions{.relu = true});
    else net.emplace<ReLU>();
}

std::unique_ptr<Sequential> residual_body(std::size_t channels, Rng& rng, const ResNetOptions& options) {
    if (channels == 0) throw std::invalid_argument("ResidualBlock: needs at least one channel");
    auto body = std::make_unique<Sequential>();
    const Conv2dOptions conv{.weight_norm = options.weight_norm};
    add_pre_activation(*body, channels, options);
    body->emplace<Conv2d>(channels, channels, options.kernel, rng, conv);
    add_pre_activation(*body, channels, options);
    body->emplace<Conv2d>(channels, channels, options.kernel, rng, conv);
    return body;
}

}  // namespace

ResidualBlock::ResidualBlock(std::size_t channels, Rng& rng, const ResNetOptions& options)
    : channels_(channels), body_(register_module("body", residual_body(channels, rng, options))) {}

Var ResidualBlock::forward(const Var& h) { return h + body_(h); }

std::string ResidualBlock::name() const { return fmt::format("ResidualBlock({})", channels_); }

std::unique_ptr<Sequential> make_resnet(std::size_t in_channels, std::size_t out_channels, Rng& rng,
                                        const ResNetOptions& options) {
    if (in_channels == 0 || out_channels == 0 || options.hidden == 0)
        throw std::invalid_argument(fmt::format(
            "make_resnet: channel counts must be positive, got in {}, out {}, hidden {}", in_channels, out_channels,
            options.hidden));
    auto net = std::make_unique<Sequential>();
    net->emplace<Conv2d>(in_channels, options.hidden, options.kernel, rng,
                         Conv2dOptions{.weight_norm = options.weight_norm});
    for (std::size_t b = 0; b < options.blocks; ++b) net->emplace<ResidualBlock>(options.hidden, rng, options);
    add_pre_activation(*net, options.hidden, options);
    net->emplace<Conv2d>(options.hidden, out_channels, options.kernel, rng, Conv2dOptions{.zero_init = true});
    return net;
}

}  // namespace tapeflow::nn
