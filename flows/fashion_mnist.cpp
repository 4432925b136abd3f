#include "flows/fashion_mnist.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "flows/idx.hpp"

namespace tapeflow::flows {

std::string fashion_mnist_dir() {
    const char* env = std::getenv("TAPEFLOW_FASHION_MNIST");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

FashionMnist load_fashion_mnist(const std::string& split, const std::string& dir, std::size_t limit) {
    if (split != "train" && split != "test")
        throw std::invalid_argument(fmt::format("load_fashion_mnist: split must be \"train\" or \"test\", got \"{}\"", split));
    const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
    const IdxImages images = read_idx_images(prefix + "-images-idx3-ubyte.gz");
    const std::vector<std::uint8_t> labels = read_idx_labels(prefix + "-labels-idx1-ubyte.gz");
    if (images.count != labels.size())
        throw std::runtime_error(fmt::format("{}: {} images but {} labels in {}", prefix, images.count, labels.size(),
                                             prefix + "-labels-idx1-ubyte.gz"));
    if (images.rows != 28 || images.cols != 28)
        throw std::runtime_error(fmt::format("{}-images-idx3-ubyte.gz: images are {}×{}, Fashion-MNIST's are 28×28",
                                             prefix, images.rows, images.cols));
    if (limit > images.count)
        throw std::runtime_error(fmt::format("{}-images-idx3-ubyte.gz: it holds {} images, fewer than the {} asked for",
                                             prefix, images.count, limit));
    const std::size_t n = limit > 0 ? limit : images.count;
    const std::size_t d = images.rows * images.cols;
    FashionMnist data{Tensor(Shape{n, d}), std::vector<std::uint8_t>(labels.begin(), labels.begin() + n)};
    std::transform(images.pixels.begin(), images.pixels.begin() + n * d, data.pixels.data(),
                   [](std::uint8_t v) { return static_cast<double>(v); });
    for (std::size_t i = 0; i < n; ++i)
        if (data.labels[i] > 9)
            throw std::runtime_error(fmt::format("{}-labels-idx1-ubyte.gz: label {} at byte {} is not a class 0..9", prefix,
                                                 data.labels[i], 8 + i));
    return data;
}

const std::vector<std::string>& fashion_mnist_classes() {
    static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return names;
}

}  // namespace tapeflow::flows
