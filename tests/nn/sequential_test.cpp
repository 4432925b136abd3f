#include "nn/sequential.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "nn/activation.hpp"
#include "nn/linear.hpp"
#include "tests/helpers.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

using tapeflow::testing::parameter_names;

struct Holder : Module {
    Sequential& net = register_module("net", std::make_unique<Sequential>());
};

}  // namespace

TEST_CASE("Sequential names children by position, so nested names read net.0.weight") {
    Rng rng(1);
    Holder h;
    h.net.emplace<Linear>(2, 8, rng);
    h.net.add(std::make_unique<Tanh>());
    h.net.emplace<Linear>(8, 1, rng);
    CHECK(parameter_names(h.net) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
    CHECK(parameter_names(h) ==
          std::vector<std::string>{"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"});
    CHECK(h.net.size() == 3);
    CHECK(h.net.name() == "Sequential(Linear(2 → 8), Tanh, Linear(8 → 1))");
}

TEST_CASE("Sequential applies its layers in order") {
    Rng rng(2);
    Sequential net;
    auto& first = net.emplace<Linear>(3, 4, rng);
    net.emplace<SiLU>();
    auto& last = net.emplace<Linear>(4, 2, rng);
    const Var x(randn(Shape{5, 3}, rng));
    NoGrad no_grad;
    CHECK(equal(net(x).value(), last(silu(first(x))).value()));
    CHECK(&net[0] == &first);
    CHECK(&net[2] == &last);
}

TEST_CASE("an empty Sequential is the identity") {
    Sequential net;
    CHECK(net.empty());
    const Tensor x{1.0, 2.0};
    CHECK(equal(net(Var(x)).value(), x));
    CHECK(net.name() == "Sequential()");
}

TEST_CASE("gradients flow through every layer of a Sequential") {
    Rng rng(3);
    Sequential net;
    net.emplace<Linear>(2, 5, rng);
    net.emplace<ELU>(0.8);
    net.emplace<Linear>(5, 3, rng);
    const GradcheckResult r = gradcheck([&](const std::vector<Var>& v) { return net(v[0]); },
                                        {randn(Shape{4, 2}, rng)}, {.parameters = net.parameters()});
    CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("Sequential rejects a null layer and an index out of range") {
    Sequential net;
    net.emplace<ReLU>();
    CHECK_THROWS_WITH_AS(net.add(nullptr), "Sequential::add: layer 1 is null", std::invalid_argument);
    CHECK_THROWS_WITH_AS(net[1], "Sequential: layer 1 requested, but there are 1", std::out_of_range);
}
