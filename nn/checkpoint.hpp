// Checkpoints: save a model's parameters (plus optimizer state and a step count) to a binary file
// and load them back bit for bit. "Nothing the user saved is ever lost": a save replaces the old
// file atomically, so a crash, a full disk or a write error midway leaves the previous checkpoint
// intact; a load validates the whole file before it changes anything, so a truncated or corrupt
// file, or one written by a different model, is reported and leaves the model untouched.
//
// File layout, version 1. All integers are little-endian; doubles are IEEE-754 binary64 bit
// patterns, little-endian, so NaN payloads, −0.0 and denormals survive exactly.
//
//     offset  size      field
//     0       8         magic, the ASCII bytes "TAPEFLOW"
//     8       4         format version, u32 (= 1)
//     12      4         has_step, u32: 1 when a step count is stored, else 0
//     16      8         step, u64 (0 when has_step is 0)
//     24      4         entry count n, u32
//     28      ...       n entries, one per tensor, in save order:
//                         name length L, u32; then L bytes of name (no terminator)
//                         rank r, u32 (at most Shape::max_rank)
//                         r dims, u64 each
//                         numel = ∏ dims values, f64 each, row-major
//     end − 8 8         checksum, u64: FNV-1a 64 of every byte before it
//
// Names are the module's dotted parameter names ("net.0.weight") followed by the extras' names
// ("optimizer/adam.m.0"); each name appears once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.hpp"
#include "tensor/shape.hpp"
#include "tensor/tensor.hpp"

namespace tapeflow::nn {

inline constexpr char checkpoint_magic[8] = {'T', 'A', 'P', 'E', 'F', 'L', 'O', 'W'};
inline constexpr std::uint32_t checkpoint_version = 1;

// State saved beside the model: named tensors (e.g. an optimizer's moments, under a prefix such
// as "optimizer/adam.m.0" so they cannot collide with parameter names) and a step counter.
// Loading writes into the tensors in place; a target tensor that is still undefined (state an
// optimizer allocates lazily) is allocated with the shape stored in the file.
struct CheckpointExtras {
    std::vector<std::pair<std::string, Tensor*>> tensors;
    std::uint64_t* step = nullptr;
};

// Writes every parameter of `model` and the extras to `path`, atomically, through
// tensor/file_io.hpp's AtomicFileWriter: the bytes go to a temporary `path + ".tmp-<pid>-<n>"`
// unique to this save, in the same directory, which is flushed, fsync'ed and renamed over `path`,
// then the directory is fsync'ed so the rename itself is durable. Temporaries that killed saves of
// the same path left behind are removed first (only those whose writer is provably dead).
// Throws std::invalid_argument before touching the disk when a tensor is undefined, an extras
// pointer is null or a name is used twice; std::runtime_error naming the path, the failed step and
// the system error (strerror) when the disk refuses. On any error up to and including the rename,
// the previous file at `path` (if any) is unchanged and the temporary file is removed; if only the
// final directory fsync fails, the new checkpoint is already in place and the message says so.
void save_checkpoint(const std::string& path, const Module& model, const CheckpointExtras& extras = {});

// What load_checkpoint does with a stored tensor (or step count) that neither the model nor the
// extras ask for: `reject` (the default, so nothing saved is silently dropped) or `ignore` (e.g. to
// load only the model from a training checkpoint for evaluation).
enum class UnusedEntries { reject, ignore };

// Reads `path` and copies the stored values into the model's parameters and the extras.
// The whole file is validated first; on any problem a std::runtime_error names the file, the
// tensor and what was expected, and neither the model nor the extras are modified:
//   - unreadable file, wrong magic, unsupported version;
//   - truncation (the byte offset, the field being read, the bytes needed and remaining);
//   - rank above Shape::max_rank, duplicate names, bytes after the checksum, checksum mismatch;
//   - a tensor (or the step count) the model/extras expect that the file lacks;
//   - a stored tensor (or step count) nobody asked for, unless `unused` is UnusedEntries::ignore;
//   - a stored shape different from the target's shape.
void load_checkpoint(const std::string& path, Module& model, const CheckpointExtras& extras = {},
                     UnusedEntries unused = UnusedEntries::reject);

// A description of a checkpoint without a model to load it into (for tutorials and inspection).
// The file is fully validated (magic, version, structure, checksum) exactly as by load_checkpoint.
struct CheckpointEntry {
    std::string name;
    Shape shape;
};
struct CheckpointInfo {
    std::uint32_t version = 0;
    std::optional<std::uint64_t> step;
    std::vector<CheckpointEntry> entries;  // in file order
    std::uint64_t file_bytes = 0;
};
CheckpointInfo read_checkpoint_info(const std::string& path);
std::vector<CheckpointEntry> read_checkpoint_index(const std::string& path);

// FNV-1a, 64-bit (Fowler, Noll & Vo; IETF draft-eastlake-fnv): h ← (h ⊕ byte) · 1099511628211
// mod 2⁶⁴ from h = 14695981039346656037. Each step is a bijection of h for a fixed byte, so
// changing any single byte of the input always changes the result.
std::uint64_t fnv1a_64(std::span<const unsigned char> bytes,
                       std::uint64_t h = 14695981039346656037ULL);

}  // namespace tapeflow::nn
