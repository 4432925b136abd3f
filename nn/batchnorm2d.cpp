#include "nn/batchnorm2d.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/conv.hpp"
#include "autograd/elementwise.hpp"

namespace tapeflow::nn {

BatchNorm2d::BatchNorm2d(std::size_t channels, BatchNorm2dOptions options)
    : channels_(channels),
      options_(options),
      weight_(register_parameter("weight", Tensor::ones(Shape{channels}))),
      bias_(register_parameter("bias", Tensor::zeros(Shape{channels}))),
      running_mean_(Tensor::zeros(Shape{channels})),
      running_var_(Tensor::ones(Shape{channels})) {
    if (channels == 0) throw std::invalid_argument("BatchNorm2d: needs at least one channel");
    if (!(options.momentum >= 0 && options.momentum <= 1))
        throw std::invalid_argument(fmt::format("BatchNorm2d: momentum must be in [0, 1], got {}", options.momentum));
    if (!(options.eps > 0) || !std::isfinite(options.eps))
        throw std::invalid_argument(fmt::format("BatchNorm2d: eps must be finite and > 0, got {}", options.eps));
}

void update_running_averages(Tensor& running_mean, Tensor& running_var, const Tensor& batch_mean,
                             const Tensor& batch_var, std::size_t count, double momentum) {
    const double unbiased = static_cast<double>(count) / static_cast<double>(count - 1);
    for (std::size_t d = 0; d < running_mean.numel(); ++d) {
        running_mean[d] = (1 - momentum) * running_mean[d] + momentum * batch_mean[d];
        running_var[d] = (1 - momentum) * running_var[d] + momentum * batch_var[d] * unbiased;
    }
}

Var BatchNorm2d::forward(const Var& x) {
    if (x.shape().rank() != 4 || x.shape()[1] != channels_)
        throw std::invalid_argument(
            fmt::format("{}: expected images [N, {}, H, W], got shape {}", name(), channels_, x.shape()));
    const std::size_t count = x.shape()[0] * x.shape()[2] * x.shape()[3];
    Var mean, var;
    if (training()) {
        if (count < 2)
            throw std::invalid_argument(fmt::format(
                "{}: training mode needs N·H·W ≥ 2 values per channel for a variance, got shape {} (call eval() to "
                "use the running averages)",
                name(), x.shape()));
        mean = sum_per_channel(x) / static_cast<double>(count);
        var = sum_per_channel(square(x - per_channel(mean))) / static_cast<double>(count);
        update_running_averages(running_mean_, running_var_, mean.value(), var.value(), count, options_.momentum);
    } else {
        mean = Var(running_mean_.clone());  // copies: a later training step must not change this pass's values
        var = Var(running_var_.clone());
    }
    const Var inv_std = weight_.var() / sqrt(var + options_.eps);
    return (x - per_channel(mean)) * per_channel(inv_std) + per_channel(bias_.var());
}

std::string BatchNorm2d::name() const { return fmt::format("BatchNorm2d({})", channels_); }

}  // namespace tapeflow::nn
