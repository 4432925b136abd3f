// Sequential: a chain of Layers applied in order, y = f_n(… f_1(f_0(x))).
//
// Children are named by position, "0", "1", ..., so a Sequential registered as "net" names its
// parameters "net.0.weight", "net.0.bias", "net.2.weight", ... (as torch.nn.Sequential).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace tapeflow::nn {

class Sequential : public Layer {
public:
    Sequential() = default;

    // Appends a layer and returns it (throws std::invalid_argument for a null pointer).
    Layer& add(std::unique_ptr<Layer> layer);
    // Builds the layer in place: `net.emplace<Linear>(2, 64, rng)`.
    template <class L, class... Args>
    L& emplace(Args&&... args) {
        auto layer = std::make_unique<L>(std::forward<Args>(args)...);
        L& ref = *layer;
        add(std::move(layer));
        return ref;
    }

    // Each layer's output feeds the next; an empty Sequential is the identity.
    Var forward(const Var& x) override;
    std::string name() const override;

    std::size_t size() const { return layers_.size(); }
    bool empty() const { return layers_.empty(); }
    // Bounds-checked (std::out_of_range).
    Layer& operator[](std::size_t i);
    const Layer& operator[](std::size_t i) const;

private:
    std::vector<Layer*> layers_;  // owned by the Module registry, in order
};

}  // namespace tapeflow::nn
