// 2-D convolution on batches of images [N, C, H, W], stride 1, zero "same" padding, lowered to gemm.
//
// With an odd square kernel of size k and r = (k − 1)/2 (so the output has the input's H × W):
//
//     y[n, o, i, j] = b[o] + Σ_{c, p, q} w[o, c, p, q] · x[n, c, i + p − r, j + q − r]      (x = 0 outside)
//
// — the cross-correlation that deep-learning libraries call convolution; weights are stored
// [C_out, C_in, k, k] as in PyTorch's nn.Conv2d. The lowering ("im2col", Chellapilla et al. 2006):
// the k²·C_in neighbours of every pixel become one column of a matrix X̂ [C_in·k², pixels], so that the
// whole convolution is one product Y = W · X̂ with W viewed as [C_out, C_in·k²]; this runs at the gemm
// rate and costs one pass of memory traffic for X̂. The backward passes are products of the same kind:
//
//     dW = dY · X̂ᵀ                     (the same columns X̂, rebuilt from x)
//     dx = conv2d(dY, w̃),  w̃[c, o, p, q] = w[o, c, k−1−p, k−1−q]
//
// The second line is the adjoint of a stride-1 "same" convolution: another such convolution with the
// kernel flipped in space and its channel axes swapped (the inner dimension of its product is
// C_out·k², where the direct col2im form would have only C_out). Several small images are put side by
// side in X̂ so that each product is wide enough for the gemm's micro-tiles.
#pragma once

#include <cstddef>

#include "tensor/tensor.hpp"

namespace tapeflow {

// x [N, C_in, H, W], weight [C_out, C_in, k, k] with k odd, bias [C_out] or undefined (no bias)
// → [N, C_out, H, W]. Throws std::invalid_argument naming the shapes for anything else.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// The three backward products of y = conv2d(x, weight, bias) for an upstream gradient dy [N, C_out, H, W]:
// d/dx [N, C_in, H, W], d/dweight [C_out, C_in, k, k] (k given) and d/dbias [C_out].
Tensor conv2d_input_grad(const Tensor& dy, const Tensor& weight);
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, std::size_t kernel);
Tensor conv2d_bias_grad(const Tensor& dy);

// w̃[c, o, p, q] = w[o, c, k−1−p, k−1−q]: the kernel of the adjoint convolution (see above).
Tensor flip_kernel(const Tensor& weight);

// Zero padding of an image batch [N, C, H, W] → [N, C, H + top + bottom, W + left + right].
Tensor pad2d(const Tensor& x, std::size_t top, std::size_t bottom, std::size_t left, std::size_t right);
// Its adjoint: the [N, C, H, W] window at (top, left) of a padded batch (padding discarded).
Tensor crop2d(const Tensor& x, std::size_t top, std::size_t left, std::size_t height, std::size_t width);

// Σ over n, i, j of an image batch [N, C, H, W] → [C] (the bias gradient and per-channel statistics).
Tensor sum_per_channel(const Tensor& x);

// Throws std::invalid_argument naming `who` unless x is an image batch [N, C, H, W].
void require_images(const Tensor& x, const char* who);

}  // namespace tapeflow
