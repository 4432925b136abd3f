// What tutorials 02 and 09 save beside a model in a checkpoint, and how they compare two models
// after a resume: one home for both (nn/checkpoint.hpp does the saving and loading).
#pragma once

#include <cstdint>

#include "nn/checkpoint.hpp"
#include "nn/module.hpp"
#include "nn/optimizer.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::tutorial {

// The optimizer's state tensors (Adam's m and v, as "optimizer/<name>"), the step counter and, when
// given, a loss history ("history/bits_per_dim") and the run's configuration (checked on load).
// The pointers are held by the result: they must outlive the save or load that uses it.
nn::CheckpointExtras training_state(nn::Optimizer& optimizer, std::uint64_t& step, Tensor* history = nullptr,
                                    const nn::CheckpointConfig* config = nullptr);

// The largest |a − b| over every parameter of two models of the same architecture (0 only when they
// agree bit for bit). Throws std::invalid_argument when their parameter lists differ in length or shape.
double max_parameter_diff(const nn::Module& a, const nn::Module& b);

}  // namespace tapeflow::tutorial
