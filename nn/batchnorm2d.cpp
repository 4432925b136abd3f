#include "nn/batchnorm2d.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autograd/conv.hpp"
#include "autograd/elementwise.hpp"
#include "autograd/op.hpp"
#include "tensor/parallel.hpp"


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

// Below this many values a pass runs on one thread (waking a second costs a few µs).
constexpr std::size_t parallel_min_values = std::size_t{1} << 15;

// body(c0, c1) over two halves of the channels when the batch is large enough (one part otherwise).
// Every per-channel sum runs over the batch in the same order inside one part, so one thread or two
// give the same bits.
template <class Body>
void over_channels(const Tensor& x, Body body) {
    const std::size_t channels = x.shape()[1];
    in_parts(channels, channels >= 2 && x.numel() >= parallel_min_values ? 2 : 1, body);
}

// The statistics a pass normalizes with, per channel: μ_c and r_c = 1/sqrt(σ_c² + ε).
struct ChannelStats {
    Tensor mean, inv_std;  // [C] each
};

// The upstream gradient at element i as the normalization sees it: with the fused ReLU, zero where the
// output y = max(0, ·) is 0 (ReLU's derivative, taken as 0 at the kink like tapeflow::relu's).
template <bool Relu>
double gated(const double* dy, const double* y, std::size_t i) {
    if constexpr (Relu) return y[i] > 0 ? dy[i] : 0.0;
    else return dy[i];
}

// dβ_c = Σ g and dγ_c = Σ g·x̂ over (n, i, j), one pass over g and x, x̂ = (x − μ)·r.
template <bool Relu>
void parameter_grads(const double* dy, const double* y, const Tensor& x, const ChannelStats& stats, double* dgamma,
                     double* dbeta) {
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double* px = x.data();
    const double* mean = stats.mean.data();
    const double* r = stats.inv_std.data();
    over_channels(x, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) dgamma[c] = dbeta[c] = 0;
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t c = c0; c < c1; ++c) {
                const std::size_t at = (i * channels + c) * pixels;
                const double mu = mean[c];
                double sum_g = 0, sum_g_centred = 0;
                for (std::size_t p = 0; p < pixels; ++p) {
                    const double g = gated<Relu>(dy, y, at + p);
                    sum_g += g;
                    sum_g_centred += g * (px[at + p] - mu);
                }
                dbeta[c] += sum_g;
                dgamma[c] += sum_g_centred * r[c];
            }
    });
}

// The fast path: with m = N·H·W values per channel and g the upstream gradient (gated by the fused
// ReLU), x̂ = (x − μ)·r (Ioffe & Szegedy 2015, Sec. 3):
//     dβ_c = Σ g,   dγ_c = Σ g·x̂,
//     dx = γ_c·r_c·g                                           (fixed statistics)
//     dx = γ_c·r_c·(g − Σ g/m − x̂·Σ(g·x̂)/m)                    (batch statistics)
// in two passes over the batch: the sums, then dx.
template <bool Relu>
void backward_batch_norm(Backward& ctx, const ChannelStats& stats, bool batch_statistics) {
    const Tensor& x = ctx.input(0);
    const Tensor& gamma = ctx.input(1);
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double m = static_cast<double>(batch * pixels);
    const double* dy = ctx.grad().data();
    const double* y = ctx.value().data();
    Tensor dgamma(Shape{channels}), dbeta(Shape{channels});
    parameter_grads<Relu>(dy, y, x, stats, dgamma.data(), dbeta.data());
    if (ctx.needs_grad(0)) {
        Tensor dx(x.shape());
        double* out = dx.data();
        const double* px = x.data();
        const double* mean = stats.mean.data();
        const double* r = stats.inv_std.data();
        const double* pg = gamma.data();
        const double* db = std::as_const(dbeta).data();
        const double* dg = std::as_const(dgamma).data();
        over_channels(x, [&](std::size_t c0, std::size_t c1) {
            for (std::size_t i = 0; i < batch; ++i)
                for (std::size_t c = c0; c < c1; ++c) {
                    // dx = a·(g − dβ/m − (x − μ)·r·dγ/m) = a·g − slope·x + offset, per channel.
                    const double a = pg[c] * r[c];
                    const double shift = batch_statistics ? db[c] / m : 0.0;
                    const double slope = batch_statistics ? a * r[c] * dg[c] / m : 0.0;
                    const double offset = slope * mean[c] - a * shift;
                    const std::size_t at = (i * channels + c) * pixels;
                    for (std::size_t p = 0; p < pixels; ++p)
                        out[at + p] = a * gated<Relu>(dy, y, at + p) - slope * px[at + p] + offset;
                }
        });
        ctx.accumulate(0, std::move(dx));
    }
    if (ctx.needs_grad(1)) ctx.accumulate(1, std::move(dgamma));
    if (ctx.needs_grad(2)) ctx.accumulate(2, std::move(dbeta));
}

// The recorded path (create_graph, autograd/functional.hpp): the same formulas composed of
// differentiable ops, with μ and r recomputed from x when they are the batch's own statistics so
// that their dependence on x is differentiated too (the second derivative needs it).
void backward_batch_norm(VarBackward& ctx, const ChannelStats& stats, bool batch_statistics, double eps, bool relu) {
    const Var x = ctx.input(0), gamma = ctx.input(1);
    const Var dy = relu ? ctx.grad() * ctx.constant(map(ctx.output_value(), [](double y) { return y > 0 ? 1.0 : 0.0; }))
                        : ctx.grad();
    const Shape& shape = x.shape();
    const double m = static_cast<double>(shape[0] * shape[2] * shape[3]);
    Var mean = ctx.constant(stats.mean), r = ctx.constant(stats.inv_std);
    Var centred = x - per_channel(mean);
    if (batch_statistics) {
        mean = sum_per_channel(x) / m;
        centred = x - per_channel(mean);
        r = 1.0 / sqrt(sum_per_channel(square(centred)) / m + eps);
    }
    const Var xhat = centred * per_channel(r);
    const Var dbeta = sum_per_channel(dy), dgamma = sum_per_channel(dy * xhat);
    if (ctx.needs_grad(0)) {
        const Var a = per_channel(gamma * r);
        ctx.accumulate(0, batch_statistics
                              ? a * (dy - per_channel(dbeta / m) - xhat * per_channel(dgamma / m))
                              : a * dy);
    }
    if (ctx.needs_grad(1)) ctx.accumulate(1, dgamma);
    if (ctx.needs_grad(2)) ctx.accumulate(2, dbeta);
}

// Per-channel mean and population variance of x [N, C, H, W] in one pass: sums of d = x − K_c and d²
// with K_c the channel's first value, σ² = (Σd² − (Σd)²/m)/m. The shift keeps Σd² from cancelling
// against (Σd)²/m unless the spread is tiny beside |μ − K_c| — here x is a convolution's output
// and K_c one of its values, so that does not happen (the "shifted data" algorithm; Chan, Golub &
// LeVeque 1983).
void channel_moments(const Tensor& x, Tensor& mean, Tensor& var) {
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double m = static_cast<double>(batch * pixels);
    mean = Tensor(Shape{channels});
    var = Tensor(Shape{channels});
    double* pm = mean.data();
    double* pv = var.data();
    const double* px = x.data();
    std::vector<double> sum(channels, 0.0), sum_sq(channels, 0.0);
    over_channels(x, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t c = c0; c < c1; ++c) {
                const double* plane = px + (i * channels + c) * pixels;
                const double shift = px[c * pixels];
                double s = 0, q = 0;
                for (std::size_t p = 0; p < pixels; ++p) {
                    const double d = plane[p] - shift;
                    s += d;
                    q += d * d;
                }
                sum[c] += s;
                sum_sq[c] += q;
            }
    });
    for (std::size_t c = 0; c < channels; ++c) {
        const double shift = px[c * pixels], mean_shift = sum[c] / m;
        pm[c] = shift + mean_shift;
        pv[c] = std::max(0.0, sum_sq[c] / m - mean_shift * mean_shift);
    }
}

// The tangent (forward mode), the derivative of the normalization along ẋ, γ̇, β̇: with batch
// statistics μ̇ = mean ẋ and ṙ = −r³·mean((x − μ)·ẋ), so ẋ̂ = r·(ẋ − mean ẋ − x̂·mean(x̂·ẋ)) (the
// means per channel over N·H·W; fixed statistics: ẋ̂ = r·ẋ); ẏ = γ·ẋ̂ + γ̇·x̂ + β̇, gated by the fused
// ReLU where y = 0 (as `gated`).
Tensor tangent_batch_norm(const Forward& t, const ChannelStats& stats, bool batch_statistics, bool relu) {
    const Tensor& x = t.input(0);
    const std::size_t batch = x.shape()[0], channels = x.shape()[1], pixels = x.shape()[2] * x.shape()[3];
    const double m = static_cast<double>(batch * pixels);
    const Tensor dx = t.tangent(0), dgamma = t.tangent(1), dbeta = t.tangent(2);
    const double *px = x.data(), *pdx = dx.data(), *y = t.value().data(), *gamma = t.input(1).data();
    const double *mean = stats.mean.data(), *r = stats.inv_std.data();
    std::vector<double> mean_dx(channels, 0.0), mean_xhat_dx(channels, 0.0);
    if (batch_statistics)
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t c = 0; c < channels; ++c) {
                const std::size_t at = (i * channels + c) * pixels;
                for (std::size_t p = 0; p < pixels; ++p) {
                    mean_dx[c] += pdx[at + p] / m;
                    mean_xhat_dx[c] += (px[at + p] - mean[c]) * r[c] * pdx[at + p] / m;
                }
            }
    Tensor dy(x.shape());
    double* out = dy.data();
    for (std::size_t i = 0; i < batch; ++i)
        for (std::size_t c = 0; c < channels; ++c) {
            const std::size_t at = (i * channels + c) * pixels;
            for (std::size_t p = 0; p < pixels; ++p) {
                const double xhat = (px[at + p] - mean[c]) * r[c];
                const double dxhat = r[c] * (pdx[at + p] - mean_dx[c] - xhat * mean_xhat_dx[c]);
                const double v = gamma[c] * dxhat + dgamma[c] * xhat + dbeta[c];
                out[at + p] = relu && !(y[at + p] > 0) ? 0.0 : v;
            }
        }
    return dy;
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
    ChannelStats stats{std::move(mean), Tensor(Shape{channels_})};
    {
        double* r = stats.inv_std.data();
        const double* v = std::as_const(var).data();
        for (std::size_t c = 0; c < channels_; ++c) r[c] = 1 / std::sqrt(v[c] + options_.eps);
    }
    const double* gamma = std::as_const(weight_.value).data();
    const double* beta = std::as_const(bias_.value).data();
    const double* mu = std::as_const(stats.mean).data();
    const double* r = std::as_const(stats.inv_std).data();
    const double* px = in.data();
    const bool relu = options_.relu;
    Tensor y(in.shape());
    double* py = y.data();
    over_channels(in, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t i = 0; i < batch; ++i)
            for (std::size_t c = c0; c < c1; ++c) {
                const double a = gamma[c] * r[c], b = beta[c] - mu[c] * a;
                const std::size_t at = (i * channels_ + c) * pixels;
                if (relu)
                    for (std::size_t p = 0; p < pixels; ++p) py[at + p] = std::max(0.0, px[at + p] * a + b);
                else
                    for (std::size_t p = 0; p < pixels; ++p) py[at + p] = px[at + p] * a + b;
            }
    });
    const Var gamma_var = weight_.var(), beta_var = bias_.var();
    // Made before the call: the backward rule below takes `stats` over by move.
    const auto tangent = [stats_for_tangent = stats, batch_statistics = training(), relu](const Forward& t) {
        return tangent_batch_norm(t, stats_for_tangent, batch_statistics, relu);
    };
    return record(relu ? "batch_norm_2d_relu" : "batch_norm_2d", std::move(y), {x, gamma_var, beta_var},
                  [stats = std::move(stats), batch_statistics = training(), eps = options_.eps, relu](auto& ctx) {
                      if constexpr (std::is_same_v<std::decay_t<decltype(ctx)>, Backward>) {
                          if (relu) backward_batch_norm<true>(ctx, stats, batch_statistics);
                          else backward_batch_norm<false>(ctx, stats, batch_statistics);
                      } else {
                          backward_batch_norm(ctx, stats, batch_statistics, eps, relu);
                      }
                  },
                  std::move(tangent));
}

std::string BatchNorm2d::name() const {
    return fmt::format("BatchNorm2d({}){}", channels_, options_.relu ? " + ReLU" : "");
}

}  // namespace tapeflow::nn
