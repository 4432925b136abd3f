// Images as flow events. A bijector on images acts on a batch of events [C, H, W] and still returns
// one log|det J| per sample [N]. So that such bijectors compose with every other one (Flow, the
// conformance kit, the trainer), their batches are the flattened [N, D] with D = C·H·W in row-major
// (channel, row, column) order — the layout a reshape of [N, C, H, W] gives for free — and each
// bijector views them as [N, C, H, W] internally. A channel split of an image is then a split of the
// flattened vector: the first C/2 channels are its first D/2 entries.
#pragma once

#include <cstddef>
#include <string>

#include "autograd/var.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::flows {

struct ImageShape {
    std::size_t channels = 1, height = 1, width = 1;
    std::size_t numel() const { return channels * height * width; }
    bool operator==(const ImageShape&) const = default;
};

// "[1, 28, 28]".
std::string to_string(const ImageShape& s);

// Throws std::invalid_argument naming `who` if a size is zero.
void require_image_shape(const ImageShape& s, const std::string& who);

// A batch [N, D] (D = s.numel()) as images [N, C, H, W] and back; `who` names the caller in the
// exception thrown for a batch of another shape.
Var as_images(const Var& batch, const ImageShape& s, const std::string& who);
Var as_batch(const Var& images);

// Σ over everything but the first axis: a per-sample [N] total of an image batch (a log-det).
Var sum_per_sample(const Var& images);

}  // namespace tapeflow::flows
