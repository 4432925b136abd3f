#include "nn/sequential.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace tapeflow::nn {

Layer& Sequential::add(std::unique_ptr<Layer> layer) {
    if (!layer) throw std::invalid_argument(fmt::format("Sequential::add: layer {} is null", layers_.size()));
    Layer& ref = register_module(std::to_string(layers_.size()), std::move(layer));
    layers_.push_back(&ref);
    return ref;
}

Var Sequential::forward(const Var& x) {
    Var h = x;
    for (Layer* layer : layers_) h = layer->forward(h);
    return h;
}

std::string Sequential::name() const {
    std::string out = "Sequential(";
    for (std::size_t i = 0; i < layers_.size(); ++i) out += (i ? ", " : "") + layers_[i]->name();
    return out + ")";
}

Layer& Sequential::operator[](std::size_t i) {
    if (i >= layers_.size())
        throw std::out_of_range(fmt::format("Sequential: layer {} requested, but there are {}", i, layers_.size()));
    return *layers_[i];
}

const Layer& Sequential::operator[](std::size_t i) const { return const_cast<Sequential&>(*this)[i]; }

}  // namespace tapeflow::nn
