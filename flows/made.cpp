#include "flows/made.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/elementwise.hpp"
#include "flows/bijector.hpp"
#include "flows/conditional.hpp"

namespace tapeflow::flows {

namespace {

// M[j, k] = 1 iff out_degree[k] ≥ in_degree[j] (hidden) or > (output, strict).
Tensor degree_mask(const std::vector<std::size_t>& in, const std::vector<std::size_t>& out, bool strict) {
    Tensor m(Shape{in.size(), out.size()});
    for (std::size_t j = 0; j < in.size(); ++j)
        for (std::size_t k = 0; k < out.size(); ++k)
            m[j * out.size() + k] = (strict ? out[k] > in[j] : out[k] >= in[j]) ? 1.0 : 0.0;
    return m;
}

}  // namespace

MADE::MADE(std::size_t dim, Rng& rng, MADEOptions options)
    : dim_(dim), params_per_dim_(options.params_per_dim), context_dim_(options.context_dim), activation_(options.activation) {
    if (dim == 0) throw std::invalid_argument("MADE: the dimension D must be at least 1");
    if (options.params_per_dim == 0) throw std::invalid_argument("MADE: params_per_dim must be at least 1");
    for (std::size_t h : options.hidden)
        if (h == 0) throw std::invalid_argument("MADE: every hidden layer needs at least 1 unit, got 0");

    std::vector<std::size_t> in_degrees(dim);
    for (std::size_t d = 0; d < dim; ++d) in_degrees[d] = d + 1;
    std::vector<std::size_t> out_degrees;
    for (std::size_t p = 0; p < params_per_dim_; ++p) out_degrees.insert(out_degrees.end(), in_degrees.begin(), in_degrees.end());

    std::vector<std::size_t> below = in_degrees;
    const std::size_t lowest = context_dim_ > 0 ? 0 : 1;  // degree 0: units that see only the context
    const std::size_t cycle = std::max<std::size_t>(1, dim - lowest);
    for (std::size_t width : options.hidden) {
        std::vector<std::size_t> degrees(width);
        for (std::size_t k = 0; k < width; ++k) degrees[k] = lowest + k % cycle;
        masks_.push_back(degree_mask(below, degrees, false));
        degrees_.push_back(degrees);
        below = std::move(degrees);
    }
    masks_.push_back(degree_mask(below, out_degrees, true));

    for (std::size_t l = 0; l < masks_.size(); ++l) {
        const Shape& s = masks_[l].shape();
        auto layer = std::make_unique<nn::Linear>(s[0], s[1], rng);
        if (options.zero_init_last && l + 1 == masks_.size()) {
            layer->weight().value = Tensor::zeros(layer->weight().value.shape());
            layer->bias()->value = Tensor::zeros(layer->bias()->value.shape());
        }
        layers_.push_back(&register_module(fmt::format("layers.{}", l), std::move(layer)));
    }
    for (std::size_t l = 0; context_dim_ > 0 && l < masks_.size(); ++l) {
        auto layer = std::make_unique<nn::Linear>(context_dim_, masks_[l].shape()[1], rng, nn::LinearOptions{.bias = false});
        if (options.zero_init_last && l + 1 == masks_.size()) layer->weight().value = Tensor::zeros(layer->weight().value.shape());
        context_.push_back(&register_module(fmt::format("context.{}", l), std::move(layer)));
    }
}

Var MADE::forward(const Var& x, const Var& context) {
    require_batch(x, dim_, "MADE::forward");
    require_context(context, x.shape()[0], context_dim_, "MADE::forward");
    ++calls_;
    Var h = x;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        nn::Linear& layer = *layers_[l];
        h = nn::linear(h, layer.weight().var() * Var(masks_[l]), layer.bias()->var());
        if (!context_.empty()) h = h + context_[l]->forward(context);
        if (l + 1 < layers_.size()) h = nn::activate(h, activation_);
    }
    return h;
}

std::string MADE::name() const {
    std::string sizes = fmt::format("{}", dim_);
    for (std::size_t l = 0; l + 1 < masks_.size(); ++l) sizes += fmt::format(" → {}", masks_[l].shape()[1]);
    return fmt::format("MADE({} → {}×{}{})", sizes, params_per_dim_, dim_,
                       context_dim_ ? fmt::format(" + context {}", context_dim_) : "");
}

}  // namespace tapeflow::flows
