#include "tutorials/common/training_state.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>


namespace tapeflow::tutorial {

nn::CheckpointExtras training_state(nn::Optimizer& optimizer, std::uint64_t& step, Tensor* history,
                                    const nn::CheckpointConfig* config) {
    nn::CheckpointExtras extras{.step = &step, .config = config};
    for (auto& [name, tensor] : optimizer.state()) extras.tensors.emplace_back("optimizer/" + name, tensor);
    if (history) extras.tensors.emplace_back("history/bits_per_dim", history);
    return extras;
}

double max_parameter_diff(const nn::Module& a, const nn::Module& b) {
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    if (pa.size() != pb.size())
        throw std::invalid_argument(
            fmt::format("max_parameter_diff: the models have {} and {} parameters", pa.size(), pb.size()));
    double worst = 0;
    for (std::size_t k = 0; k < pa.size(); ++k) {
        if (pa[k].second->value.shape() != pb[k].second->value.shape())
            throw std::invalid_argument(fmt::format("max_parameter_diff: parameter '{}' has shape {} in one model and {} in the other",
                                                    pa[k].first, pa[k].second->value.shape(), pb[k].second->value.shape()));
        worst = std::max(worst, max_abs_diff(pa[k].second->value, pb[k].second->value));
    }
    return worst;
}

}  // namespace tapeflow::tutorial
