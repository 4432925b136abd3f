#include "nn/batchnorm2d.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/op.hpp"


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

namespace {

// One tape node for y = γ_c · (x − μ_c) · r_c + β_c with r_c = 1/sqrt(σ_c² + ε): the composition of
// elementwise ops it replaces recorded a dozen nodes per layer, each with a full-size temporary (the
// layer sits in every residual block). `stats` holds [μ; r] [2, C]; `batch_statistics` says whether
// μ, σ² are the batch's own statistics (differentiated through) or the running averages.
//
// With m = N·H·W values per channel and x̂ = (x − μ)·r (Ioffe & Szegedy 2015, Sec. 3):
//     dβ_c = Σ dy,   dγ_c = Σ dy·x̂,
//     dx = γ_c·r_c·dy                                          (fixed statistics)
//     dx = γ_c·r_c·(dy − Σ dy/m − x̂·Σ(dy·x̂)/m)                 (batch statistics)
void backward_batch_norm(Backward& ctx, const Tensor& stats, bool batch_statistics) {
    const Tensor& x = ctx.input(0);
    const Tensor& gamma = ctx.input(1);
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double m = static_cast<double>(batch * pixels);
    Tensor dgamma = Tensor::zeros(Shape{channels}), dbeta = Tensor::zeros(Shape{channels});
    const double* dy = ctx.grad().data();
    const double* px = x.data();
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t c = 0; c < channels; ++c) {
            const double mean = stats[c], r = stats[channels + c];
            const std::size_t at = (i * channels + c) * pixels;
            double sum_dy = 0, sum_dy_xhat = 0;
            for (std::size_t p = 0; p < pixels; ++p) {
                sum_dy += dy[at + p];
                sum_dy_xhat += dy[at + p] * (px[at + p] - mean) * r;
            }
            dbeta[c] += sum_dy;
            dgamma[c] += sum_dy_xhat;
        }
    if (ctx.needs_grad(0)) {
        Tensor dx(x.shape());
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t c = 0; c < channels; ++c) {
                const double mean = stats[c], r = stats[channels + c], a = gamma[c] * r;
                const double shift = batch_statistics ? dbeta[c] / m : 0.0;
                const double tilt = batch_statistics ? dgamma[c] / m : 0.0;
                const std::size_t at = (i * channels + c) * pixels;
                for (std::size_t p = 0; p < pixels; ++p)
                    dx[at + p] = a * (dy[at + p] - shift - (px[at + p] - mean) * r * tilt);
            }
        ctx.accumulate(0, std::move(dx));
    }
    if (ctx.needs_grad(1)) ctx.accumulate(1, std::move(dgamma));
    if (ctx.needs_grad(2)) ctx.accumulate(2, std::move(dbeta));
}

// Per-channel mean and population variance of x [N, C, H, W], two passes (no E[x²] − E[x]² cancellation).
void channel_moments(const Tensor& x, Tensor& mean, Tensor& var) {
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double m = static_cast<double>(batch * pixels);
    mean = Tensor::zeros(Shape{channels});
    var = Tensor::zeros(Shape{channels});
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t p = 0; p < pixels; ++p) mean[c] += x[(i * channels + c) * pixels + p];
    for (std::size_t c = 0; c < channels; ++c) mean[c] /= m;
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t p = 0; p < pixels; ++p) {
                const double d = x[(i * channels + c) * pixels + p] - mean[c];
                var[c] += d * d;
            }
    for (std::size_t c = 0; c < channels; ++c) var[c] /= m;
}

}  // namespace

Var BatchNorm2d::forward(const Var& x) {
    if (x.shape().rank() != 4 || x.shape()[1] != channels_)
        throw std::invalid_argument(
            fmt::format("{}: expected images [N, {}, H, W], got shape {}", name(), channels_, x.shape()));
    const Tensor& in = x.value();
    const std::size_t batch = in.shape()[0], pixels = in.shape()[2] * in.shape()[3], count = batch * pixels;
    Tensor mean, var;
    if (training()) {
        if (count < 2)
            throw std::invalid_argument(fmt::format(
                "{}: training mode needs N·H·W ≥ 2 values per channel for a variance, got shape {} (call eval() to "
                "use the running averages)",
                name(), x.shape()));
        channel_moments(in, mean, var);
        update_running_averages(running_mean_, running_var_, mean, var, count, options_.momentum);
    } else {
        mean = running_mean_.clone();  // copies: a later training step must not change this pass's values
        var = running_var_.clone();
    }
    Tensor stats(Shape{2, channels_});
    for (std::size_t c = 0; c < channels_; ++c) {
        stats[c] = mean[c];
        stats[channels_ + c] = 1 / std::sqrt(var[c] + options_.eps);
    }
    const Tensor& gamma = weight_.value;
    const Tensor& beta = bias_.value;
    Tensor y(in.shape());
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t c = 0; c < channels_; ++c) {
            const double a = gamma[c] * stats[channels_ + c], b = beta[c] - stats[c] * a;
            const std::size_t at = (i * channels_ + c) * pixels;
            for (std::size_t p = 0; p < pixels; ++p) y[at + p] = in[at + p] * a + b;
        }
    const Var gamma_var = weight_.var(), beta_var = bias_.var();
    return record("batch_norm_2d", std::move(y), {x, gamma_var, beta_var},
                  [stats = std::move(stats), batch_statistics = training()](Backward& ctx) {
                      backward_batch_norm(ctx, stats, batch_statistics);
                  });
}

std::string BatchNorm2d::name() const { return fmt::format("BatchNorm2d({})", channels_); }

}  // namespace tapeflow::nn
