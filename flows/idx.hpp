// Reading the IDX files of MNIST-style data sets from gzip files (the Debian package
// `dataset-fashion-mnist` ships them as .gz; a plain file where a .gz is expected is reported, not guessed at).
//
// IDX layout (big-endian): magic 0x00000803 for images (then count, rows, cols as int32) or
// 0x00000801 for labels (then count), followed by one unsigned byte per pixel or label.
// Every malformed input — not gzip, corrupt gzip, wrong magic, a header whose sizes disagree with
// the data — throws std::runtime_error naming the file and the byte offset. Reading is bounded: the
// path must be a regular file (a directory, a FIFO or a device fails at once, with the system's
// reason), the IDX header is decompressed first, and inflation stops at the size it declares (plus
// one byte, to report trailing data or extra gzip members); a header declaring more than the file
// could hold (deflate expands at most 1032-fold) or more than this machine's memory fails before
// anything is allocated.
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

// The decompressed bytes of a gzip file (all its members), at most `max_bytes` of them: a file that
// decompresses to more fails once that many are read, naming the bound.
std::vector<std::uint8_t> read_gzip_file(const std::string& path, std::size_t max_bytes = std::size_t{1} << 30);
IdxImages read_idx_images(const std::string& path);
std::vector<std::uint8_t> read_idx_labels(const std::string& path);

}  // namespace tapeflow::flows
