// RealNVP (Dinh et al. 2017; docs/theory.md §5): a standard normal base pushed through a stack of affine
// couplings with alternating masks, optionally with a normalization layer between consecutive
// couplings. The README's quick start trains the default on two moons:
//
//     auto flow = make_realnvp({.dim = 2});   // 8 couplings, conditioners MLP 2 → 64 → 64 → 4 (ReLU)
//     Var nll = -mean(flow->log_prob(x));
//
// Layer k (in Flow order, latent → data) is a coupling with mask parity k mod 2 when there is no
// normalization; with one, the layers are coupling, norm, coupling, norm, …, coupling
// (2·couplings − 1 of them) and coupling j has parity j mod 2. Every coupling starts as the
// identity (zero-initialized last layer), so the untrained flow is exactly its base distribution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flows/flow.hpp"
#include "nn/activation.hpp"

namespace tapeflow::flows {

enum class CouplingMask {
    alternating,   // alternate entries, alternating_mask(D, parity)
    checkerboard,  // checkerboard_mask(height, width, parity), for images flattened row-major
};

enum class Normalization {
    none,
    actnorm,    // ActNorm(D), initialized on the first training batch
    batchnorm,  // BatchNorm(D) with the default options (momentum 0.1, eps 1e-5, affine)
};

struct RealNVPOptions {
    std::size_t dim = 2;
    std::size_t couplings = 8;
    std::vector<std::size_t> hidden = {64, 64};  // conditioner MLP D → hidden… → 2D
    CouplingMask mask = CouplingMask::alternating;
    std::size_t height = 0;  // checkerboard only: height · width must equal dim
    std::size_t width = 0;
    Normalization norm = Normalization::none;
    nn::Activation activation = nn::Activation::relu;
    std::uint64_t seed = 0;  // of the Rng that draws every conditioner's weights, in layer order
};

// The flow described above, with a StandardNormal(dim) base. Throws std::invalid_argument for
// dim < 2, couplings = 0, a zero hidden size, or a checkerboard whose height · width ≠ dim.
std::unique_ptr<Flow> make_realnvp(const RealNVPOptions& options = {});

// "none", "actnorm", "batchnorm"; "alternating", "checkerboard".
std::string_view to_string(Normalization norm);
std::string_view to_string(CouplingMask mask);

}  // namespace tapeflow::flows
