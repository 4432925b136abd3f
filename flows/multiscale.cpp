#include "flows/multiscale.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "autograd/shape_ops.hpp"
#include "flows/channel_actnorm.hpp"
#include "flows/distributions.hpp"
#include "flows/image_coupling.hpp"
#include "flows/squeeze.hpp"
#include "tensor/elementwise.hpp"

namespace tapeflow::flows {

MultiScale::MultiScale(std::size_t dim, std::vector<Level> levels) : dim_(dim) {
    if (levels.empty()) throw std::invalid_argument("MultiScale: needs at least one level");
    if (levels.back().factor_out)
        throw std::invalid_argument("MultiScale: the last level keeps its output (factor_out = false): it is the last latent block");
    std::size_t d = dim;
    for (std::size_t k = 0; k < levels.size(); ++k) {
        StoredLevel stored{{}, levels[k].factor_out, d};
        for (std::size_t j = 0; j < levels[k].steps.size(); ++j) {
            std::unique_ptr<Bijector>& step = levels[k].steps[j];
            if (!step) throw std::invalid_argument(fmt::format("MultiScale: step {} of level {} is null", j, k));
            if (step->dim() != 0 && step->dim() != d)
                throw std::invalid_argument(fmt::format(
                    "MultiScale: step {} of level {} ({}) acts on D = {}, but the level's dimension is {}", j, k,
                    step->name(), step->dim(), d));
            stored.steps.push_back(&register_module(fmt::format("levels.{}.{}", k, j), std::move(step)));
        }
        if (levels[k].factor_out) {
            if (d % 2 != 0)
                throw std::invalid_argument(
                    fmt::format("MultiScale: level {} factors out half of D = {}, which is odd", k, d));
            d /= 2;
            latent_sizes_.push_back(d);
        } else {
            latent_sizes_.push_back(d);
        }
        levels_.push_back(std::move(stored));
    }
}

Bijector& MultiScale::step(std::size_t level, std::size_t index) {
    if (level >= levels_.size() || index >= levels_[level].steps.size())
        throw std::out_of_range(fmt::format("MultiScale: no step {} in level {} ({} levels)", index, level, levels_.size()));
    return *levels_[level].steps[index];
}

MultiScale::Latents MultiScale::latents(const Var& x) {
    require_batch(x, dim_, "MultiScale::inverse");
    Latents out;
    Var h = x;
    Var log_det = Var(Tensor::zeros(Shape{x.shape()[0]}));
    for (const StoredLevel& level : levels_) {
        for (Bijector* step : level.steps) {
            Transformed t = step->inverse(h);
            h = t.value;
            log_det = log_det + t.log_abs_det_jacobian;
        }
        if (level.factor_out) {
            // The last C/2 channels leave (RealNVP eq. 14); the first C/2 continue.
            const std::size_t half = level.dim / 2;
            out.blocks.push_back(narrow(h, 1, half, half));
            h = narrow(h, 1, 0, half);
        }
    }
    out.blocks.push_back(h);
    out.log_abs_det_jacobian = log_det;
    return out;
}

Transformed MultiScale::inverse(const Var& x) {
    Latents l = latents(x);
    return {concat(l.blocks, 1), l.log_abs_det_jacobian};
}

Transformed MultiScale::forward(const Var& z) {
    require_batch(z, dim_, "MultiScale::forward");
    const std::vector<Var> blocks = split(z, 1, latent_sizes_);
    Var h = blocks.back();
    Var log_det = Var(Tensor::zeros(Shape{z.shape()[0]}));
    for (std::size_t k = levels_.size(); k-- > 0;) {
        const StoredLevel& level = levels_[k];
        if (level.factor_out) h = concat({h, blocks[k]}, 1);
        for (std::size_t j = level.steps.size(); j-- > 0;) {
            Transformed t = level.steps[j]->forward(h);
            h = t.value;
            log_det = log_det + t.log_abs_det_jacobian;
        }
    }
    return {h, log_det};
}

std::string MultiScale::name() const {
    std::size_t steps = 0;
    for (const StoredLevel& level : levels_) steps += level.steps.size();
    return fmt::format("MultiScale(D = {}, {} levels, {} steps, latent blocks [{}])", dim_, levels_.size(), steps,
                       fmt::join(latent_sizes_, ", "));
}

namespace {

// `count` couplings of one mask kind at `image`, parities alternating, each after a ChannelActNorm
// when asked for.
void add_couplings(std::vector<std::unique_ptr<Bijector>>& steps, const ImageShape& image, ImageMask kind,
                   std::size_t count, std::size_t hidden, const MultiScaleOptions& options, Rng& rng) {
    const nn::ResNetOptions resnet{.hidden = hidden,
                                   .blocks = options.blocks,
                                   .weight_norm = options.weight_norm,
                                   .batch_norm = options.batch_norm};
    for (std::size_t k = 0; k < count; ++k) {
        if (options.actnorm) steps.push_back(std::make_unique<ChannelActNorm>(image));
        steps.push_back(std::make_unique<ImageAffineCoupling>(image, kind, k % 2, rng, resnet));
    }
}

}  // namespace

std::unique_ptr<Flow> make_multiscale_realnvp(const MultiScaleOptions& options) {
    require_image_shape(options.image, "make_multiscale_realnvp");
    if (options.hidden.empty()) throw std::invalid_argument("make_multiscale_realnvp: needs at least one hidden size");
    const std::size_t factor = std::size_t{1} << options.scales;
    if (options.image.height % factor != 0 || options.image.width % factor != 0)
        throw std::invalid_argument(fmt::format(
            "make_multiscale_realnvp: {} scales squeeze the image {} {} times, so H and W must be divisible by {}",
            options.scales, to_string(options.image), options.scales, factor));
    if (options.checkerboard + options.channel + options.final_couplings == 0)
        throw std::invalid_argument("make_multiscale_realnvp: every coupling count is 0, the flow would be a permutation");
    Rng rng(options.seed);
    std::vector<Level> levels;
    ImageShape image = options.image;
    for (std::size_t s = 0; s < options.scales; ++s) {
        const std::size_t hidden = options.hidden[std::min(s, options.hidden.size() - 1)];
        Level level;
        add_couplings(level.steps, image, ImageMask::checkerboard, options.checkerboard, hidden, options, rng);
        auto squeeze = std::make_unique<Squeeze>(image);
        image = squeeze->latent_shape();
        level.steps.push_back(std::move(squeeze));
        add_couplings(level.steps, image, ImageMask::channel, options.channel, hidden, options, rng);
        levels.push_back(std::move(level));
        image.channels /= 2;  // factored out
    }
    Level last{{}, false};
    add_couplings(last.steps, image, ImageMask::checkerboard, options.final_couplings, options.hidden.back(), options, rng);
    levels.push_back(std::move(last));
    const std::size_t dim = options.image.numel();
    std::vector<std::unique_ptr<Bijector>> layers;
    layers.push_back(std::make_unique<MultiScale>(dim, std::move(levels)));
    return std::make_unique<Flow>(std::make_unique<StandardNormal>(dim), std::move(layers));
}

Tensor sample_at_temperature(Flow& flow, std::size_t n, double temperature, Rng& rng) {
    if (!(temperature > 0) || !std::isfinite(temperature))
        throw std::invalid_argument(
            fmt::format("sample_at_temperature: the temperature must be finite and > 0, got {}", temperature));
    NoGrad no_grad;
    const Tensor z = randn(Shape{n, flow.dim()}, rng, 0.0, temperature);
    return flow.forward(Var(z)).value.value();
}

}  // namespace tapeflow::flows
