#include "flows/realnvp.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "flows/actnorm.hpp"
#include "flows/batchnorm.hpp"
#include "flows/coupling.hpp"
#include "flows/distributions.hpp"
#include "tensor/random.hpp"

namespace tapeflow::flows {

namespace {

void require_options(const RealNVPOptions& o) {
    if (o.dim < 2)
        throw std::invalid_argument(fmt::format(
            "make_realnvp: needs dim ≥ 2 (a coupling copies some coordinates and transforms the others), got {}", o.dim));
    if (o.couplings == 0) throw std::invalid_argument("make_realnvp: needs at least one coupling, got couplings = 0");
    for (std::size_t k = 0; k < o.hidden.size(); ++k)
        if (o.hidden[k] == 0)
            throw std::invalid_argument(
                fmt::format("make_realnvp: hidden size {} is zero in [{}]", k, fmt::join(o.hidden, ", ")));
    if (o.mask == CouplingMask::checkerboard && o.height * o.width != o.dim)
        throw std::invalid_argument(fmt::format(
            "make_realnvp: a checkerboard mask needs height · width = dim, got {} · {} = {} for dim = {}", o.height,
            o.width, o.height * o.width, o.dim));
}

Tensor mask_for(const RealNVPOptions& o, std::size_t parity) {
    return o.mask == CouplingMask::checkerboard ? checkerboard_mask(o.height, o.width, parity)
                                                : alternating_mask(o.dim, parity);
}

}  // namespace

std::unique_ptr<Flow> make_realnvp(const RealNVPOptions& options) {
    require_options(options);
    Rng rng(options.seed);
    auto flow = std::make_unique<Flow>(std::make_unique<StandardNormal>(options.dim));
    for (std::size_t j = 0; j < options.couplings; ++j) {
        if (j > 0 && options.norm == Normalization::actnorm) flow->add(std::make_unique<ActNorm>(options.dim));
        if (j > 0 && options.norm == Normalization::batchnorm) flow->add(std::make_unique<BatchNorm>(options.dim));
        flow->add(std::make_unique<AffineCoupling>(mask_for(options, j % 2), options.hidden, rng, options.activation));
    }
    return flow;
}

std::string_view to_string(Normalization norm) {
    switch (norm) {
        case Normalization::none: return "none";
        case Normalization::actnorm: return "actnorm";
        case Normalization::batchnorm: return "batchnorm";
    }
    return "?";
}

std::string_view to_string(CouplingMask mask) {
    switch (mask) {
        case CouplingMask::alternating: return "alternating";
        case CouplingMask::checkerboard: return "checkerboard";
    }
    return "?";
}

}  // namespace tapeflow::flows
