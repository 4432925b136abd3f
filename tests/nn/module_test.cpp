#include "nn/module.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/linear.hpp"
#include "nn/sequential.hpp"

using namespace tapeflow;
using namespace tapeflow::nn;

namespace {

// A module that counts its mode changes, to see train()/eval() reach every level.
struct ModeProbe : Layer {
    std::vector<bool> modes;
    Var forward(const Var& x) override { return x; }
    void on_mode_change(bool training) override { modes.push_back(training); }
};

// Own parameters plus two children, one of them nested: exercises the dotted naming.
struct Composite : Module {
    Parameter& scale;
    Sequential& net;
    ModeProbe& probe;
    explicit Composite(Rng& rng)
        : scale(register_parameter("scale", Tensor{1.0, 2.0})),
          net(register_module("net", std::make_unique<Sequential>())),
          probe(register_module("probe", std::make_unique<ModeProbe>())) {
        net.emplace<Linear>(3, 4, rng);
        net.emplace<ModeProbe>();
        net.emplace<Linear>(4, 2, rng, LinearOptions{.bias = false});
    }
    std::string name() const override { return "Composite"; }
};

}  // namespace

TEST_CASE("named_parameters lists own parameters first, then children depth first, with dotted names") {
    Rng rng(1);
    Composite m(rng);
    std::vector<std::string> names;
    for (const auto& [name, p] : m.named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"scale", "net.0.weight", "net.0.bias", "net.2.weight"});
    // parameters() hands out the same objects, in the same order.
    const auto params = m.parameters();
    REQUIRE(params.size() == 4);
    CHECK(params[0] == &m.scale);
    CHECK(params[1] == &dynamic_cast<Linear&>(m.net[0]).weight());
}

TEST_CASE("parameter_count sums every element") {
    Rng rng(1);
    Composite m(rng);
    CHECK(m.parameter_count() == 2 + (3 * 4 + 4) + 4 * 2);
}

TEST_CASE("summary lists each parameter with its shape and count, and the total") {
    Rng rng(1);
    Composite m(rng);
    CHECK(m.summary() ==
          "Composite\n"
          "  parameter     shape                count\n"
          "  scale         [2]                      2\n"
          "  net.0.weight  [3, 4]                  12\n"
          "  net.0.bias    [4]                      4\n"
          "  net.2.weight  [4, 2]                   8\n"
          "  total                                 26\n");
}

TEST_CASE("train() and eval() propagate to every child, nested ones included") {
    Rng rng(1);
    Composite m(rng);
    auto& inner = dynamic_cast<ModeProbe&>(m.net[1]);
    CHECK(m.training());
    m.eval();
    CHECK_FALSE(m.training());
    CHECK_FALSE(m.net.training());
    CHECK_FALSE(m.net[0].training());
    CHECK_FALSE(inner.training());
    CHECK(inner.modes == std::vector<bool>{false});
    CHECK(m.probe.modes == std::vector<bool>{false});
    m.train();
    CHECK(m.net[2].training());
    CHECK(inner.modes == std::vector<bool>{false, true});
}

TEST_CASE("zero_grad zeroes every parameter's gradient, recursively") {
    Rng rng(1);
    Composite m(rng);
    for (Parameter* p : m.parameters()) p->grad.fill(3.0);
    m.zero_grad();
    for (Parameter* p : m.parameters()) CHECK(equal(p->grad, Tensor::zeros(p->shape())));
}

namespace {

struct Misnamed : Module {
    void add_parameter(const std::string& name) { register_parameter(name, Tensor{0.0}); }
    void add_child(const std::string& name, std::unique_ptr<Module> child) { register_module(name, std::move(child)); }
};

}  // namespace

TEST_CASE("registration rejects empty and repeated names and a null child") {
    Misnamed m;
    m.add_parameter("w");
    m.add_child("net", std::make_unique<Sequential>());
    CHECK_THROWS_WITH_AS(m.add_parameter("w"), "Module::register_parameter: \"w\" is already a parameter",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_child("w", std::make_unique<Sequential>()),
                         "Module::register_module: \"w\" is already a parameter", std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_parameter("net"), "Module::register_parameter: \"net\" is already a child module",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_parameter(""), "Module::register_parameter: the name is empty", std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_child("other", nullptr), "Module::register_module: child \"other\" is null",
                         std::invalid_argument);
    CHECK(m.named_parameters().size() == 1);
}

namespace {

// A parameter, a buffer and a child that has a buffer of its own: buffers are walked like parameters.
struct Buffered : Module {
    Parameter& w;
    Tensor& count;
    struct Inner : Module {
        Tensor& running;
        Inner() : running(register_buffer("running", Tensor{0.5, 0.25})) {}
    };
    Inner& inner;
    Buffered()
        : w(register_parameter("w", Tensor{1.0})),
          count(register_buffer("count", Tensor{0.0})),
          inner(register_module("inner", std::make_unique<Inner>())) {}
    void add_buffer(const std::string& name, Tensor t) { register_buffer(name, std::move(t)); }
};

}  // namespace

TEST_CASE("buffers: non-trainable state listed with dotted names, never among the parameters") {
    Buffered m;
    std::vector<std::string> names;
    for (const auto& [name, b] : m.named_buffers()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"count", "inner.running"});
    CHECK(m.named_buffers()[0].second == &m.count);
    CHECK(m.named_buffers()[1].second == &m.inner.running);
    CHECK(m.parameters().size() == 1);
    CHECK(m.parameter_count() == 1);
    // Updated in place through the reference, seen through the listing.
    m.count[0] = 7;
    CHECK(std::as_const(m).named_buffers()[0].second->item() == 7);
}

TEST_CASE("register_buffer rejects names already used and undefined tensors") {
    Buffered m;
    CHECK_THROWS_WITH_AS(m.add_buffer("w", Tensor{1.0}), "Module::register_buffer: \"w\" is already a parameter",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_buffer("count", Tensor{1.0}), "Module::register_buffer: \"count\" is already a buffer",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_buffer("inner", Tensor{1.0}),
                         "Module::register_buffer: \"inner\" is already a child module", std::invalid_argument);
    CHECK_THROWS_WITH_AS(m.add_buffer("b", Tensor()), "Module::register_buffer: buffer \"b\" is an undefined tensor",
                         std::invalid_argument);
    CHECK(m.named_buffers().size() == 2);
}
