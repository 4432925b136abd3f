// A tiny training run with SoftLeaky: a flow of SoftLeaky and planar layers fitted to the two-moons
// data by maximum likelihood (forward KL). Prints the held-out NLL before and after, and exits
// non-zero unless training lowered it clearly — so running it is a test that the bijector learns.
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "flows/distributions.hpp"
#include "flows/elementwise.hpp"
#include "flows/planar.hpp"
#include "flows/trainer.hpp"
#include "my_bijector.hpp"

using namespace tapeflow;
using namespace tapeflow::flows;

int main() {
    Rng init_rng(0);
    std::vector<std::unique_ptr<Bijector>> layers;
    for (int k = 0; k < 4; ++k) {
        layers.push_back(std::make_unique<Planar>(2, init_rng));
        layers.push_back(std::make_unique<my_bijector::SoftLeaky>(2));
    }
    layers.push_back(std::make_unique<Affine>(2));  // last: the data's location and scale
    Flow flow(std::make_unique<StandardNormal>(2), std::move(layers));

    Rng test_rng(1);
    const Tensor test = sample_moons(2000, test_rng);
    const double before = evaluate_nll(flow, test);

    const TrainResult result = train_forward_kl(flow, [](std::size_t n, Rng& rng) { return sample_moons(n, rng); },
                                                {.steps = 400, .batch = 256, .learning_rate = 1e-2, .seed = 2});
    const double after = evaluate_nll(flow, test);

    fmt::print("{} with {} parameters, {} steps of forward KL on two moons\n", flow.name(), flow.parameter_count(),
               result.losses.size());
    fmt::print("held-out NLL: {:.4f} before, {:.4f} after (the data's entropy is {:.4f})\n", before, after,
               *dataset_entropy("moons"));
    // The untrained flow scores about 4.1 nats; these 400 steps reach about 1.7 (seeds fixed).
    if (!(after < before - 0.5)) {
        fmt::print(stderr, "train: the NLL did not drop by 0.5 nats\n");
        return 1;
    }
    return 0;
}
