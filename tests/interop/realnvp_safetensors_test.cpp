// A tutorial-07 RealNVP (8 couplings, conditioners 2 → 64 → 64 → 4), briefly trained on two moons,
// carried through a safetensors file into a differently seeded model: every parameter and the
// log-density of every point must come back bit for bit.
#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "autograd/tape.hpp"
#include "flows/datasets.hpp"
#include "flows/realnvp.hpp"
#include "flows/trainer.hpp"
#include "nn/safetensors.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

std::vector<std::uint64_t> parameter_bits(const nn::Module& m) {
    std::vector<std::uint64_t> out;
    for (const auto& [name, p] : m.named_parameters())
        for (const double v : p->value.span()) out.push_back(std::bit_cast<std::uint64_t>(v));
    return out;
}

Tensor log_prob(flows::Flow& flow, const Tensor& x) {
    NoGrad no_grad;
    return flow.log_prob(Var(x)).value();
}

}  // namespace

TEST_CASE("a trained tutorial-07 RealNVP round-trips through safetensors with identical log_prob") {
    const flows::RealNVPOptions shape{.dim = 2, .couplings = 8, .hidden = {64, 64}, .seed = 1};
    auto trained = flows::make_realnvp(shape);
    // 30 Adam steps move every parameter off its initialization (the last layers off zero).
    flows::train_forward_kl(*trained, [](std::size_t n, Rng& rng) { return flows::sample_moons(n, rng); },
                            {.steps = 30, .batch = 128, .learning_rate = 3e-3, .seed = 2});
    const fs::path path = fs::temp_directory_path() / fmt::format("tapeflow_realnvp_{}.safetensors", ::getpid());
    nn::save_safetensors(path.string(), *trained);

    auto loaded = flows::make_realnvp({.dim = 2, .couplings = 8, .hidden = {64, 64}, .seed = 99});
    REQUIRE(parameter_bits(*loaded) != parameter_bits(*trained));
    nn::load_safetensors(path.string(), *loaded);
    CHECK(parameter_bits(*loaded) == parameter_bits(*trained));

    Rng rng(3);
    const Tensor x = flows::sample_moons(500, rng);
    const Tensor expected = log_prob(*trained, x);
    CHECK(equal(log_prob(*loaded, x), expected));
    CHECK(!equal(log_prob(*flows::make_realnvp(shape), x), expected));  // training changed the density

    // A model of another shape is refused and keeps its own parameters.
    auto narrower = flows::make_realnvp({.dim = 2, .couplings = 8, .hidden = {32, 32}, .seed = 1});
    const auto before = parameter_bits(*narrower);
    CHECK_THROWS_WITH_AS(nn::load_safetensors(path.string(), *narrower),
                         doctest::Contains("tensor 'layers.0.conditioner.0.weight' has shape [2, 64], the model expects [2, 32]"),
                         std::runtime_error);
    CHECK(parameter_bits(*narrower) == before);
    fs::remove(path);
}
