#include "tutorials/common/image_training.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

#include "autograd/var.hpp"
#include "flows/logit.hpp"
#include "tensor/random.hpp"

using namespace tapeflow;
using namespace tapeflow::tutorial;
using namespace tapeflow::tutorial::images;

namespace {

Cli training_cli() {
    Cli cli("09_realnvp_fashion_mnist", "image training");
    declare_training_options(cli, {.steps = {"15000", "40"},
                                   .batch = {"64", "32"},
                                   .warmup = {"100", "10"},
                                   .checkpoint_every = {"1000", "20"},
                                   .test_images = {"10000", "500"},
                                   .steps_help = "training steps"});
    return cli;
}

TrainingSettings parsed(const std::vector<std::string>& args) { return parse_training_options(training_cli().parse(args)); }

}  // namespace

TEST_CASE("the shared training options: each tutorial's defaults, with and without --quick") {
    const TrainingSettings full = parsed({"--data", "/some/folder"});
    CHECK(full.steps == 15000);
    CHECK(full.batch == 64);
    CHECK(full.warmup == 100);
    CHECK(full.checkpoint_every == 1000);
    CHECK(full.test_images == 10000);
    CHECK(full.train_images == 60000);
    CHECK(full.lr == 0.001);
    CHECK(full.threads == 2);
    CHECK_FALSE(full.resume);
    CHECK(full.data_dir == "/some/folder");

    const TrainingSettings quick = parsed({"--quick", "--resume", "--lr", "0.01", "--threads", "1", "--data", "d"});
    CHECK(quick.steps == 40);
    CHECK(quick.batch == 32);
    CHECK(quick.warmup == 10);
    CHECK(quick.checkpoint_every == 20);
    CHECK(quick.test_images == 500);
    CHECK(quick.lr == 0.01);
    CHECK(quick.threads == 1);
    CHECK(quick.resume);
}

TEST_CASE("--data auto is $TAPEFLOW_FASHION_MNIST, else the system's data set folder") {
    const char* before = std::getenv("TAPEFLOW_FASHION_MNIST");
    const std::string saved = before ? before : "";
    ::setenv("TAPEFLOW_FASHION_MNIST", "/from/the/environment", 1);
    CHECK(parsed({}).data_dir == "/from/the/environment");
    ::unsetenv("TAPEFLOW_FASHION_MNIST");
    CHECK(parsed({}).data_dir == "/usr/share/datasets/fashion-mnist");
    if (before) ::setenv("TAPEFLOW_FASHION_MNIST", saved.c_str(), 1);
}

TEST_CASE("bad training options are refused by name before anything runs") {
    const Cli cli = training_cli();
    const auto refusal = [&](const std::vector<std::string>& args) {
        try {
            cli.parse(args);
        } catch (const UsageError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(refusal({"--steps", "0"}).find("--steps") != std::string::npos);
    CHECK(refusal({"--batch", "1"}).find("--batch") != std::string::npos);
    CHECK(refusal({"--lr", "0"}).find("--lr") != std::string::npos);
    CHECK(refusal({"--test-images", "20000"}).find("--test-images") != std::string::npos);
}

TEST_CASE("a resume must keep the batches and the schedule; evaluation sizes and threads may change") {
    const Cli cli = training_cli();
    const Options a = cli.parse(std::vector<std::string>{"--seed", "3", "--data", "x"});
    const nn::CheckpointConfig config = training_config(parse_training_options(a), a);
    const nn::CheckpointConfig expected{{"--seed", "3"},    {"--batch", "64"}, {"--lr", "0.001"},
                                        {"--warmup", "100"}, {"--steps", "15000"}, {"--train-images", "60000"}};
    CHECK(config == expected);

    const Options b = cli.parse(std::vector<std::string>{"--seed", "3", "--test-images", "10", "--threads", "1",
                                                         "--checkpoint-every", "7", "--data", "elsewhere"});
    CHECK(training_config(parse_training_options(b), b) == config);
    const Options c = cli.parse(std::vector<std::string>{"--seed", "3", "--lr", "0.002", "--data", "x"});
    CHECK(training_config(parse_training_options(c), c).at("--lr") == "0.002");
}

TEST_CASE("make_mlp_realnvp at initialization is the logit alone: log p(x) by hand") {
    // Every coupling's last layer starts at zero, so before training the couplings are identities and,
    // with no normalization between them, log p(x) = Σᵢ [log N(yᵢ; 0, 1) + log((1 − 2α)/(pᵢ(1 − pᵢ)))]
    // with p = α + (1 − 2α)x, y = logit p (RealNVP Sec. 4.1).
    auto flow = make_mlp_realnvp(2, 8, flows::Normalization::none, 5);
    REQUIRE(flow->size() == 3);
    CHECK(dynamic_cast<flows::LogitPreprocessing*>(&flow->layer(2)) != nullptr);
    CHECK(flow->dim() == 784);

    Rng rng(11);
    const Tensor x = tapeflow::rand(Shape{2, 784}, rng);
    const Tensor log_px = flow->log_prob(Var(x)).value();
    REQUIRE(log_px.shape() == Shape{2});
    const double a = logit_alpha;
    for (std::size_t n = 0; n < 2; ++n) {
        double by_hand = 0;
        for (std::size_t i = 0; i < 784; ++i) {
            const double p = a + (1 - 2 * a) * x[n * 784 + i], y = std::log(p) - std::log1p(-p);
            by_hand += -0.5 * y * y - 0.5 * std::log(2 * std::numbers::pi) + std::log((1 - 2 * a) / (p * (1 - p)));
        }
        CHECK(log_px[n] == doctest::Approx(by_hand).epsilon(1e-12));
    }
}
