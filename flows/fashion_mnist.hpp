// Fashion-MNIST (Xiao et al. 2017): 70,000 grayscale 28×28 images of clothing in 10 classes,
// read from the gzipped IDX files of the Debian package `dataset-fashion-mnist`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace tapeflow::flows {

struct FashionMnist {
    Tensor pixels;                     // [N, 784], integer values 0..255 as doubles
    std::vector<std::uint8_t> labels;  // N class indices 0..9
};

// The folder with the four .gz files: $TAPEFLOW_FASHION_MNIST if set, else the Debian package's
// /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_dir();

// split is "train" (60,000 images) or "test" (10,000); `limit` > 0 keeps only the first `limit`.
// Throws std::runtime_error naming the file when it is missing, not a regular file or malformed,
// when images and labels disagree, and when it holds fewer than `limit` images.
FashionMnist load_fashion_mnist(const std::string& split, const std::string& dir = fashion_mnist_dir(),
                                std::size_t limit = 0);

// The class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace tapeflow::flows
