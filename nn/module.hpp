// Module: the base of everything with trainable parameters (layers, networks, bijectors, flows).
//
// A module owns its parameters, its buffers and its child modules in registries, so it can list them
// all, recursively, with dotted names ("coupling.3.net.0.weight"), which is what optimizers,
// gradient clipping and checkpoints work from. A buffer is non-trainable state that a checkpoint
// must restore for the model to behave as saved (BatchNorm's running averages, ActNorm's
// initialized flag): no gradient, no optimizer, but saved and loaded beside the parameters. Parameters and children keep their addresses for
// the module's whole life: modules are neither copied nor moved (hold them by value where they
// are built, or by std::unique_ptr).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/parameter.hpp"
#include "autograd/var.hpp"

namespace tapeflow::nn {

class Module {
public:
    Module() = default;
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    Module(Module&&) = delete;
    Module& operator=(Module&&) = delete;

    // Own parameters first (in registration order), then each child's, depth first.
    std::vector<std::pair<std::string, Parameter*>> named_parameters();
    std::vector<std::pair<std::string, const Parameter*>> named_parameters() const;
    std::vector<Parameter*> parameters();
    std::size_t parameter_count() const;  // total number of scalar parameters
    // Own buffers first (in registration order), then each child's, depth first.
    std::vector<std::pair<std::string, Tensor*>> named_buffers();
    std::vector<std::pair<std::string, const Tensor*>> named_buffers() const;
    void zero_grad();

    // Training mode affects modules that behave differently in evaluation (BatchNorm, ActNorm's
    // initialization); set recursively.
    void train(bool on = true);
    void eval() { train(false); }
    bool training() const { return training_; }

    // A readable table of every parameter: name, shape, count, and the total.
    std::string summary() const;
    // The module's kind as shown by summary(), e.g. "Linear(2 → 64)".
    virtual std::string name() const { return "Module"; }

protected:
    // All three throw std::invalid_argument for an empty name or one this module already uses for a
    // parameter, a buffer or a child (two entries with one dotted name would make a checkpoint
    // ambiguous), register_buffer for an undefined tensor and register_module for a null child. The
    // returned references stay valid for the module's life (write a buffer in place to update it).
    Parameter& register_parameter(std::string name, Tensor initial);
    Tensor& register_buffer(std::string name, Tensor initial);
    template <class M>
    M& register_module(std::string name, std::unique_ptr<M> child) {
        check_new_name(name, child != nullptr, "register_module");
        M& ref = *child;
        children_.emplace_back(std::move(name), std::move(child));
        return ref;
    }
    // Called by train(); modules with mode-dependent state override it.
    virtual void on_mode_change(bool /*training*/) {}

private:
    void check_new_name(const std::string& name, bool non_null, const char* op) const;
    void collect(const std::string& prefix, std::vector<std::pair<std::string, const Parameter*>>& out) const;
    void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, const Tensor*>>& out) const;

    std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> parameters_;
    std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
    std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
    bool training_ = true;
};

// A module with one input and one output: what Sequential chains and MLP is built from.
class Layer : public Module {
public:
    virtual Var forward(const Var& x) = 0;
    Var operator()(const Var& x) { return forward(x); }
};

}  // namespace tapeflow::nn
