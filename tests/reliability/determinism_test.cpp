// Determinism: the same seed gives bit-identical training, loss by loss and checkpoint byte by
// checkpoint byte, and the thread count does not change a single bit of a matrix product (gemm
// splits rows and columns between threads, never the sum over K). What this does and does not
// promise across machines is written up in the README ("What is validated").
#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "autograd/elementwise.hpp"
#include "autograd/linalg.hpp"
#include "autograd/reduce.hpp"
#include "flows/distributions.hpp"
#include "flows/flow.hpp"
#include "flows/planar.hpp"
#include "flows/targets.hpp"
#include "flows/trainer.hpp"
#include "nn/checkpoint.hpp"
#include "tensor/format.hpp"
#include "tensor/linalg.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
namespace fs = std::filesystem;

namespace {

// A planar flow with K = 4 layers on D = 2, its initial weights drawn from `seed`.
std::unique_ptr<flows::Flow> planar_flow(std::uint64_t seed) {
    Rng rng(seed);
    std::vector<std::unique_ptr<flows::Bijector>> layers;
    for (int k = 0; k < 4; ++k) layers.push_back(std::make_unique<flows::Planar>(2, rng));
    return std::make_unique<flows::Flow>(std::make_unique<flows::StandardNormal>(2), std::move(layers));
}

struct Trained {
    std::vector<std::uint64_t> loss_bits;  // every step's loss as its bit pattern (NaN-safe ==)
    std::vector<unsigned char> checkpoint;
};

std::vector<unsigned char> file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Trains planar K = 4 on U1 by reverse KL (with annealing and clipping, so every code path of the
// loop is exercised), saves the flow, and returns the losses and the checkpoint's bytes.
Trained train_and_save(std::uint64_t init_seed, std::uint64_t data_seed, const std::string& path) {
    auto flow = planar_flow(init_seed);
    const flows::TrainResult r = flows::train_reverse_kl(
        *flow, flows::U1,
        {.steps = 150, .batch = 64, .learning_rate = 1e-2, .seed = data_seed, .annealing = flows::AnnealingSchedule{}, .clip_norm = 10.0});
    nn::save_checkpoint(path, *flow);
    Trained t;
    for (double loss : r.losses) t.loss_bits.push_back(std::bit_cast<std::uint64_t>(loss));
    t.checkpoint = file_bytes(path);
    return t;
}

}  // namespace

TEST_CASE("training twice with the same seeds gives bit-identical losses and checkpoint bytes") {
    const fs::path dir = fs::temp_directory_path() / fmt::format("tapeflow_determinism_{}", ::getpid());
    fs::create_directories(dir);
    const Trained first = train_and_save(1, 2, (dir / "first.ckpt").string());
    const Trained second = train_and_save(1, 2, (dir / "second.ckpt").string());
    const Trained other_data = train_and_save(1, 3, (dir / "other_data.ckpt").string());
    const Trained other_init = train_and_save(4, 2, (dir / "other_init.ckpt").string());
    fs::remove_all(dir);

    REQUIRE(first.loss_bits.size() == 150);
    CHECK(first.loss_bits == second.loss_bits);
    REQUIRE(first.checkpoint.size() > 100);
    CHECK(first.checkpoint == second.checkpoint);
    // The comparison can fail: either seed alone changes the trajectory and the weights.
    CHECK(first.loss_bits != other_data.loss_bits);
    CHECK(first.checkpoint != other_data.checkpoint);
    CHECK(first.loss_bits != other_init.loss_bits);
    CHECK(first.checkpoint != other_init.checkpoint);
}

TEST_CASE("one or two threads give bit-identical matrix products and gradients") {
    // a·b, aᵀ·a and the backward's dC·Bᵀ are above gemm's parallel threshold (M·N·K ≥ 2²⁰), and no
    // size is a micro-tile multiple, so the split moves the edge tiles; a tile-dependent summation
    // order would show here. (The smaller products run on one thread either way.)
    Rng rng(11);
    const Tensor a = randn({257, 67}, rng);
    const Tensor b = randn({67, 65}, rng);
    const Tensor batched = randn({3, 130, 67}, rng);
    auto products = [&] {
        Tape tape;
        TapeScope scope(tape);
        const Var x = tape.variable(a);
        const Var w = tape.variable(b);
        const Var loss = sum(matmul(x, w) * matmul(x, w)) + sum(matmul(tape.variable(batched), w));
        tape.backward(loss);
        return std::vector<Tensor>{tapeflow::matmul(a, b), tapeflow::matmul_tn(a, a), tapeflow::matmul_nt(b, b),
                                   tapeflow::matmul(batched, b), x.grad(), w.grad()};
    };
    const int previous = num_threads();
    set_num_threads(1);
    const std::vector<Tensor> one = products();
    const int got = set_num_threads(2);
    const std::vector<Tensor> two = products();
    set_num_threads(previous);
    if (got < 2) {
        MESSAGE("only one hardware thread: nothing to compare");
        return;
    }
    REQUIRE(one.size() == two.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);
        REQUIRE(one[i].shape() == two[i].shape());
        bool identical = true;
        for (std::size_t k = 0; k < one[i].numel(); ++k)
            identical = identical && std::bit_cast<std::uint64_t>(one[i][k]) == std::bit_cast<std::uint64_t>(two[i][k]);
        CHECK(identical);
    }
}
