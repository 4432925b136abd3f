// NumPy's .npy format for tensors: `save_npy` writes a file that `numpy.load` opens as a float64
// array of the same shape, and `load_npy` reads one back (or one NumPy wrote with
// `numpy.save(path, a.astype("<f8"))`), bit for bit.
//
// The format (numpy.lib.format, "NEP 1"), version 1.0 as written here:
//
//     offset  size  field
//     0       6     magic, the bytes "\x93NUMPY"
//     6       2     version: major 1, minor 0
//     8       2     header length H, u16 little-endian
//     10      H     header: a Python dict literal in ASCII,
//                     {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }
//                   padded with spaces and ended by '\n' so the data starts at a multiple of 64
//     10 + H  …     numel · 8 bytes: IEEE-754 binary64, little-endian ('<f8'), row-major (C order)
//
// A rank-0 tensor is shape (), a vector (n,). Versions 2.0 and 3.0 differ only in a u32 header
// length (for headers longer than 65535 bytes), so load_npy reads them too.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace tapeflow {

// The complete file contents for `t`. Throws std::invalid_argument for an undefined tensor.
std::vector<unsigned char> encode_npy(const Tensor& t);

// Parses the contents of a .npy file; `source` names it in messages (usually the path). Throws
// std::runtime_error naming the source, the byte offset and what was found for: a wrong magic or
// an unsupported version; a header that is truncated, not a dict of exactly 'descr',
// 'fortran_order' and 'shape', or malformed; a dtype other than '<f8' (float32, big-endian,
// integers…: convert with `a.astype("<f8")`); fortran_order True (use `np.ascontiguousarray`);
// a rank above Shape::max_rank or a size that overflows; data shorter (truncated) or longer than
// the shape says.
Tensor decode_npy(std::span<const unsigned char> bytes, const std::string& source);

// Writes `t` to `path` (replacing it atomically: see tensor/file_io.hpp); throws
// std::invalid_argument for an undefined tensor, std::runtime_error naming the path and the
// system's reason when the disk refuses.
void save_npy(const std::string& path, const Tensor& t);

// Reads the file at `path` with decode_npy's checks; std::runtime_error names the path.
Tensor load_npy(const std::string& path);

}  // namespace tapeflow
