#include "nn/mlp.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

namespace {

std::vector<std::size_t> checked(std::vector<std::size_t> sizes) {
    if (sizes.size() < 2)
        throw std::invalid_argument(fmt::format(
            "MLP: needs at least two sizes (in and out), got {} ([{}])", sizes.size(), fmt::join(sizes, ", ")));
    for (std::size_t k = 0; k < sizes.size(); ++k)
        if (sizes[k] == 0)
            throw std::invalid_argument(fmt::format("MLP: size {} is zero in [{}]", k, fmt::join(sizes, ", ")));
    return sizes;
}

}  // namespace

MLP::MLP(std::vector<std::size_t> sizes, Rng& rng, MLPOptions options)
    : sizes_(checked(std::move(sizes))), options_(options) {
    for (std::size_t k = 0; k + 1 < sizes_.size(); ++k) {
        linears_.push_back(&emplace<Linear>(sizes_[k], sizes_[k + 1], rng, options_.linear));
        if (k + 2 < sizes_.size()) add(make_activation(options_.activation, options_.activation_options));
    }
    if (options_.zero_init_last) {
        Linear& last = *linears_.back();
        last.weight().value.fill(0.0);
        if (last.bias()) last.bias()->value.fill(0.0);
    }
}

Var MLP::forward(const Var& x) {
    if (options_.activation != Activation::relu) return Sequential::forward(x);
    Var h = x;
    for (std::size_t k = 0; k < linears_.size(); ++k)
        h = k + 1 < linears_.size() ? linears_[k]->forward_relu(h) : linears_[k]->forward(h);
    return h;
}

std::string MLP::name() const {
    return fmt::format("MLP({}, {})", fmt::join(sizes_, " → "), to_string(options_.activation));
}

Linear& MLP::linear(std::size_t k) {
    if (k >= linears_.size())
        throw std::out_of_range(fmt::format("MLP::linear: layer {} requested, but there are {}", k, linears_.size()));
    return *linears_[k];
}

const Linear& MLP::linear(std::size_t k) const { return const_cast<MLP&>(*this).linear(k); }

}  // namespace tapeflow::nn
