// Differentiable image operations on batches [N, C, H, W] (the Var twins of tensor/conv.hpp):
// the "same" convolution with its three backward products, zero padding, and the per-channel
// view and sum that broadcasting a [C] vector over an image batch needs.
#pragma once

#include <cstddef>

#include "autograd/var.hpp"

namespace tapeflow {

// y = conv2d(x, weight) (+ bias), as tensor/conv.hpp: x [N, C_in, H, W], weight [C_out, C_in, k, k]
// with k odd, bias [C_out]. One tape node; its backward forms dx, dweight and dbias, each only when
// that argument needs a gradient.
Var conv2d(const Var& x, const Var& weight, CallSite site = CallSite::current());
Var conv2d(const Var& x, const Var& weight, const Var& bias, CallSite site = CallSite::current());

// Zero padding of H and W; the gradient is the upstream gradient cropped back.
Var pad2d(const Var& x, std::size_t top, std::size_t bottom, std::size_t left, std::size_t right,
          CallSite site = CallSite::current());

// A [C] vector viewed as [C, 1, 1], so that it broadcasts over the channels of an image batch:
// x * per_channel(scale) multiplies channel c of every image by scale[c].
Var per_channel(const Var& v, CallSite site = CallSite::current());
// Σ over n, i, j of an image batch [N, C, H, W] → [C]; the gradient broadcasts back.
Var sum_per_channel(const Var& x, CallSite site = CallSite::current());

}  // namespace tapeflow
