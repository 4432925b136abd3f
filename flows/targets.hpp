// Target densities for reverse-KL training: the four 2-D energies of Rezende & Mohamed (2015,
// Table 1), p(z) ∝ exp(−U(z)) (docs/theory.md §7), as differentiable functions of a batch; their plain
// values for plots; a lookup by name; and log Z over a box by quadrature, which turns the reverse-KL
// loss into a KL divergence (KL_box = loss + log Z_box, docs/theory.md §8).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::flows {

// An unnormalized negative log-density: z [N, D] → U(z) [N], differentiable in z.
using Energy = std::function<Var(const Var&)>;

// The Rezende & Mohamed energies on a batch z [N, 2] → [N] (docs/theory.md §7), with
//   w1 = sin(2π z1 / 4),  w2 = 3 exp(−½((z1 − 1)/0.6)²),  w3 = 3 σ((z1 − 1)/0.3):
//   U1 = ½((‖z‖ − 2)/0.4)² − log( exp(−½((z1 − 2)/0.6)²) + exp(−½((z1 + 2)/0.6)²) )
//   U2 = ½((z2 − w1)/0.4)²
//   U3 = −log( exp(−½((z2 − w1)/0.35)²) + exp(−½((z2 − w1 + w2)/0.35)²) )
//   U4 = −log( exp(−½((z2 − w1)/0.4)²)  + exp(−½((z2 − w1 + w3)/0.35)²) )
// Each −log(eᵃ + eᵇ) is a stable log-add-exp, so U stays finite (and so does its gradient)
// arbitrarily far from the modes. U1's ‖z‖ has a cone point at z = 0; its gradient there is the
// subgradient 0. Throws std::invalid_argument unless z is a non-empty [N, 2].
Var U1(const Var& z);
Var U2(const Var& z);
Var U3(const Var& z);
Var U4(const Var& z);

struct Target {
    std::string name;         // "u1" … "u4"
    std::string description;  // one line, for help texts and plot titles
    Energy energy;
    // Only U1 decays in every direction; U2–U4 are constant along z1 far out, so their
    // Z is finite only on a box and their KL is reported on the box (docs/theory.md §7).
    bool normalizable_on_plane;
};

// The four targets, in order u1 … u4.
const std::vector<Target>& targets();
std::vector<std::string> target_names();
// The target called `name`; throws std::invalid_argument listing the valid names otherwise.
const Target& target(const std::string& name);

// U2–U4 do not decay along z1, so exp(−U) has infinite mass on the plane and the reverse-KL loss has
// no minimum. `confined_to_box` adds a wall outside the box,
//     W(z) = Σ_i ½ (max(0, |z_i| − box)/width)²,
// zero inside (−box, box)^D, so the target there is unchanged, and exp(−U − W) is normalizable.
// Throws std::invalid_argument if the energy is empty or box, width are not > 0 (finite).
Energy confined_to_box(Energy energy, double box = 4.0, double width = 0.1);

// U evaluated on plain tensors (no tape), for plots and tables: z [N, D] → [N].
Tensor energy_values(const Energy& energy, const Tensor& z);

// The n × n cell centres of the box (−box, box)², as a batch [n², 2] in row-major order:
// point (r, c) = (x_c, y_r) with x_c = −box + (c + ½)h, y_r = −box + (r + ½)h, h = 2·box/n.
// So row 0 lies at the bottom (y ≈ −box), which is how density grids are laid out.
// Throws std::invalid_argument unless box > 0 (finite) and n ≥ 1.
Tensor box_grid(double box, std::size_t n);

// log Z_box = log ∫_{(−box, box)²} exp(−U(z)) dz by the midpoint rule on box_grid(box, n),
// summed as a log-sum-exp of −U + 2 log h so that nothing underflows or overflows. The default grid
// (1000² points) is accurate to ~1e-6 for U1–U4 on the default box (see targets_test.cpp).
// Reference values on (−4, 4)²: U1 1.8775, U2 2.0821, U3 2.6417, U4 2.6846 (docs/theory.md §7).
double log_partition_box(const Energy& energy, double box = 4.0, std::size_t n = 1000);

// exp(−U)/Z_box on box_grid(box, n), laid out as an image [n, n] (row r at y_r, column c at x_c),
// for heatmaps next to a flow's density_grid.
Tensor energy_density_grid(const Energy& energy, double box = 4.0, std::size_t n = 200);

}  // namespace tapeflow::flows
