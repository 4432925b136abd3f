// Reading the IDX files of MNIST-style data sets from gzip files (the Debian package
// `dataset-fashion-mnist` ships them as .gz; a plain file where a .gz is expected is reported, not guessed at).
//
// IDX layout (big-endian): magic 0x00000803 for images (then count, rows, cols as int32) or
// 0x00000801 for labels (then count), followed by one unsigned byte per pixel or label.
// Every malformed input — not gzip, corrupt gzip, wrong magic, a header whose sizes disagree with
// the data — throws std::runtime_error naming the file and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tapeflow::flows {

struct IdxImages {
    std::size_t count = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;  // count × rows × cols, row-major
};

// The decompressed bytes of a gzip file.
std::vector<std::uint8_t> read_gzip_file(const std::string& path);
IdxImages read_idx_images(const std::string& path);
std::vector<std::uint8_t> read_idx_labels(const std::string& path);

}  // namespace tapeflow::flows
