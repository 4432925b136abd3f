#include "nn/conv2d.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "autograd/conv.hpp"
#include "nn/init.hpp"
#include "nn/weight_norm.hpp"

namespace tapeflow::nn {

Conv2d::Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, Rng& rng, Conv2dOptions options)
    : in_(in_channels), out_(out_channels), kernel_(kernel) {
    if (in_ == 0 || out_ == 0)
        throw std::invalid_argument(
            fmt::format("Conv2d({} → {}): both channel counts must be positive", in_channels, out_channels));
    if (kernel_ % 2 == 0)
        throw std::invalid_argument(fmt::format(
            "Conv2d({} → {}): the kernel size must be odd for \"same\" padding, got {}", in_, out_, kernel_));
    const std::size_t fan_in = in_ * kernel_ * kernel_, fan_out = out_ * kernel_ * kernel_;
    // PyTorch's nn.Conv2d.reset_parameters: kaiming_uniform(a = √5) for W, U(±1/√fan_in) for b.
    Tensor w = initialize(Init::kaiming_uniform(), Shape{out_, in_, kernel_, kernel_}, fan_in, fan_out, rng);
    Tensor b = options.bias ? initialize(Init::kaiming_uniform(), Shape{out_}, fan_in, fan_out, rng) : Tensor();
    if (options.zero_init && b.defined()) b.fill(0);
    if (options.weight_norm) {
        Tensor g = options.zero_init ? Tensor::zeros(Shape{out_}) : slice_norms(w);
        v_ = &register_parameter("v", std::move(w));
        g_ = &register_parameter("g", std::move(g));
    } else {
        if (options.zero_init) w.fill(0);
        weight_ = &register_parameter("weight", std::move(w));
    }
    if (options.bias) bias_ = &register_parameter("bias", std::move(b));
}

Var Conv2d::weight() { return v_ ? weight_norm(v_->var(), g_->var()) : weight_->var(); }

Var Conv2d::forward(const Var& x) {
    if (x.shape().rank() != 4 || x.shape()[1] != in_)
        throw std::invalid_argument(
            fmt::format("{}: expected images [N, {}, H, W], got shape {}", name(), in_, x.shape()));
    return bias_ ? conv2d(x, weight(), bias_->var()) : conv2d(x, weight());
}

std::string Conv2d::name() const {
    return fmt::format("Conv2d({} → {}, {}×{}{}{})", in_, out_, kernel_, kernel_, v_ ? ", weight_norm" : "",
                       bias_ ? "" : ", bias=false");
}

}  // namespace tapeflow::nn
