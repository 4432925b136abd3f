// Weight normalization (Salimans & Kingma 2016, eq. 2), as RealNVP's conditioners use it (Dinh et al.
// 2017, Sec. 4.1): each output unit's weight vector is a direction v/‖v‖ times a learned length g,
//
//     w_o = g_o · v_o / ‖v_o‖,
//
// which decouples the length of a weight vector from its direction and speeds up gradient descent.
// Here "a unit" is the first axis: a convolution's output channel ([C_out, C_in, k, k] → one norm per
// C_out), so the norm runs over all the other axes.
#pragma once

#include "autograd/var.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::nn {

// w = g · v / ‖v‖ per slice v[o] along the first axis; v of rank ≥ 1, g [v.shape()[0]].
// Differentiable in v and g. Throws std::invalid_argument for other shapes, naming both.
Var weight_norm(const Var& v, const Var& g);

// ‖v[o]‖ for every slice along the first axis → [v.shape()[0]]: the g that makes weight_norm(v, g) = v
// (how a weight-normalized layer is initialized, as torch.nn.utils.weight_norm does).
Tensor slice_norms(const Tensor& v);

}  // namespace tapeflow::nn
