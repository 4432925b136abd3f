// Parameter: a persistent leaf (a weight, a bias) whose value and gradient outlive the tape.
// Each step records a leaf node for it on the tape; backward adds into `grad` here, so clearing the
// tape between steps never loses a gradient and never copies a weight.
#pragma once

#include "tensor/tensor.hpp"

namespace tapeflow {

class Var;

class Parameter {
public:
    Parameter() = default;
    explicit Parameter(Tensor initial);

    // The tape keeps a pointer to the parameter while a step is recorded, so a parameter keeps its
    // address: it can be moved into place while building a model, never copied.
    Parameter(const Parameter&) = delete;
    Parameter& operator=(const Parameter&) = delete;
    Parameter(Parameter&&) = default;
    Parameter& operator=(Parameter&&) = default;

    const Shape& shape() const { return value.shape(); }
    std::size_t numel() const { return value.numel(); }
    void zero_grad();
    // A handle for use in this step's computation: a leaf on the current tape (or a plain
    // constant under no_grad).
    Var var();

    Tensor value;
    Tensor grad;  // same shape as value, zeros until a backward pass adds into it
};

}  // namespace tapeflow
