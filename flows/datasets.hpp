// 2-D toy data sets for maximum-likelihood training (docs/theory.md §7): seeded samplers in the shapes of
// FFJORD's toy generators (Grathwohl et al. 2019, toy_data.py) and scikit-learn's make_moons, a
// lookup by name, and the differential entropy where it is known: the best test NLL (in nats)
// any model can reach, to read a trained flow's NLL against.
//
// Every sampler draws i.i.d. points: where the reference code lays points on a fixed grid of angles
// (np.linspace) and then shuffles, or splits a batch exactly in halves or fifths, we draw the angle
// and the component at random instead. The distribution is the same; the batch is then a sample of it.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tensor/random.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::flows {

// Draws n points [n, 2].
using Sampler = std::function<Tensor(std::size_t n, Rng& rng)>;

// Two interleaved half circles, exactly sklearn.datasets.make_moons without rescaling: with
// t ~ U[0, π] and a fair coin, the outer moon (cos t, sin t) or the inner one (1 − cos t, 0.5 − sin t),
// plus N(0, noise²) on each coordinate. Neither centred nor scaled (FFJORD's "moons" is 2x − (1, 0.2)):
// the mean is (½, ¼) and the points lie in about [−1, 2] × [−0.5, 1] (tutorial 07 trains on it at
// noise 0.05). Throws std::invalid_argument if noise is negative or not finite.
Tensor sample_moons(std::size_t n, Rng& rng, double noise = 0.05);
// A mixture of 8 equally weighted Gaussians: (4·c_k + 0.5·ε)/√2, c_k = (cos kπ/4, sin kπ/4), ε ~ N(0, I);
// i.e. centres at radius 2√2 ≈ 2.83 and std 0.5/√2 ≈ 0.354 (FFJORD's "8gaussians", which divides by
// 1.414 instead of √2: 2e-5 nats of entropy apart).
Tensor sample_eight_gaussians(std::size_t n, Rng& rng);
// Uniform on the 8 squares [2i, 2i + 2) × [2j, 2j + 2), i, j ∈ {−2, …, 1}, i + j even: a
// checkerboard on [−4, 4)² whose bottom-left square is filled (FFJORD's "checkerboard").
Tensor sample_checkerboard(std::size_t n, Rng& rng);
// Four concentric circles of radii 3, 2.25, 1.5, 0.75 (equally likely), uniform angle, plus
// N(0, 0.08²) on each coordinate (FFJORD's "rings").
Tensor sample_rings(std::size_t n, Rng& rng);
// Five curved arms (FFJORD's "pinwheel"): arm c ~ U{0..4}, radial r = 1 + 0.3ε₁, tangential
// s = 0.1ε₂, angle a = 2πc/5 + 0.25·eʳ, point 2·(r cos a + s sin a, −r sin a + s cos a).
Tensor sample_pinwheel(std::size_t n, Rng& rng);
// Two interleaved spirals (FFJORD's "2spirals"): m = 3π√u, the point
// ±(−m cos m + 0.5u₁, m sin m + 0.5u₂)/3 (sign by a fair coin), plus N(0, 0.1²) per coordinate.
Tensor sample_two_spirals(std::size_t n, Rng& rng);

struct Dataset {
    std::string name;         // "moons", "8gaussians", "checkerboard", "rings", "pinwheel", "2spirals"
    std::string description;  // one line
    Sampler sample;           // with the default parameters above
    // Differential entropy in nats of the distribution `sample` draws from, where known.
    std::optional<double> entropy;
};

const std::vector<Dataset>& datasets();
std::vector<std::string> dataset_names();
// The data set called `name`; throws std::invalid_argument listing the valid names otherwise.
const Dataset& dataset(const std::string& name);

// n points [n, 2] of the named data set, drawn from rng (same seed ⇒ same points).
Tensor sample_dataset(const std::string& name, std::size_t n, Rng& rng);

// Known entropies (nats), the lower bound of any model's expected test NLL:
//   checkerboard  ln 32 = 3.46574 (uniform on an area of 32);
//   8gaussians    2.83158 (log 8 + log(2πe·0.125) = 2.83798 for disjoint components, less their
//                 small overlap);
//   moons         0.28923 (noise 0.05);
// std::nullopt for the others. The last two were computed by quadrature (−∫ p log p on a grid,
// p itself a quadrature over the arc for the moons) and are checked by Monte Carlo in
// datasets_test.cpp. Throws like `dataset` for an unknown name.
std::optional<double> dataset_entropy(const std::string& name);

}  // namespace tapeflow::flows
