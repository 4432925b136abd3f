// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
#pragma once

#include <vector>

#include "autograd/parameter.hpp"

namespace tapeflow::nn {

struct ClipOptions {
    // Throw std::runtime_error when the total norm is NaN or ±inf, instead of returning it.
    bool error_if_nonfinite = false;
};

// The total norm ‖g‖ = √(Σ over every element of every parameter's gradient of g²), returned as it
// was before clipping. When c = max_norm / (‖g‖ + 1e-6) < 1, every gradient is scaled by c in place
// (PyTorch's formula, so a norm within 1e-6 below max_norm is scaled by a hair too); otherwise the
// gradients are left exactly as they were. The sum of squares is rescaled if it would overflow.
//
// A non-finite norm (a NaN or inf gradient) is returned and the gradients are left untouched: by
// default no error, as PyTorch; check the result (std::isfinite) and skip the step. (PyTorch would
// also multiply the gradients by NaN or 0; leaving them keeps the culprit visible.)
// Throws std::invalid_argument if max_norm is not > 0, or a gradient is missing or mis-shaped.
double clip_grad_norm(const std::vector<Parameter*>& parameters, double max_norm, const ClipOptions& options = {});

// The total norm alone (same definition), without clipping.
double grad_norm(const std::vector<Parameter*>& parameters);

// Clamps every gradient element into [−clip_value, clip_value]. Throws unless clip_value ≥ 0.
void clip_grad_value(const std::vector<Parameter*>& parameters, double clip_value);

}  // namespace tapeflow::nn
